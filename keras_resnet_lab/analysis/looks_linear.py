"""A deep plain network trains from the looks-linear initialization (Balduzzi et al., arXiv
1702.08591).

Balduzzi et al. trace the trouble of deep plain networks to *shattered gradients*: at the usual
initialization the gradient of a deep ReLU network with respect to its input decorrelates like
white noise, so gradient descent has little to follow. Their *looks-linear* initialization pairs
CReLU activations (``[relu(x), relu(-x)]``) with mirrored kernels ``[W; -W]`` (``W``
orthogonal): ``[W; -W]^T [relu(x); relu(-x)] = W^T x``, so the network is exactly linear at
initialization, its gradients do not shatter, and a deep plain network (no shortcuts, no batch
normalization) trains.

:func:`compare_initializations` trains the same deep plain dense network
(:func:`~keras_resnet_lab.models.mlp.plain_mlp`) from each initialization with the same
optimizer (Adam), learning rate(s), batch size, epochs and data order, and reports each at its
best learning rate; :func:`linearity_error` measures how far a network is from an affine map.
"""

import dataclasses

import numpy as np

from keras_resnet_lab._checks import boolean, int_at_least, one_of, positive_int
from keras_resnet_lab.analysis._common import progress
from keras_resnet_lab.analysis._training import check_training_data, loss_and_accuracy, train_arm
from keras_resnet_lab.analysis._training import learning_rates as learning_rates_list
from keras_resnet_lab.analysis.results import Result
from keras_resnet_lab.models.mlp import INITS, plain_mlp

#: Accuracy of a guess among the 10 digit classes (the figure's chance line).
CHANCE_ACCURACY = 0.1


def linearity_error(model, x):
    """How far ``model`` is from an affine map on ``x``: ``max |f(x) - (f(0) + J x)| /
    max |f(x)|``, with ``J`` read from the outputs at the basis vectors.

    0 (to rounding) for a network that computes an affine map, such as a looks-linear network
    at initialization; of order 1 for a deep ReLU network.

    Args:
        model: a Keras model of one input.
        x: inputs of the model's input shape, at least one example.

    Returns:
        float, the relative error of the best affine fit through ``f(0)``.

    Example:
        >>> model = plain_mlp(3, 8, init="looks_linear", input_shape=(6,))
        >>> linearity_error(model, np.random.normal(size=(16, 6))) < 1e-5
        True
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2 or len(x) == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"`x` must be a non-empty batch of finite inputs (n, ...) for the "
                         f"model, got shape {x.shape}.")
    shape = x.shape[1:]
    size = int(np.prod(shape))
    basis = np.concatenate([np.zeros((1, size)), np.eye(size)]).astype("float32")
    probes = np.asarray(model(basis.reshape((-1,) + shape), training=False), dtype=np.float64)
    offset, jacobian = probes[0], probes[1:] - probes[0]
    out = np.asarray(model(x, training=False), dtype=np.float64)
    affine = offset + x.reshape(len(x), -1).astype(np.float64) @ jacobian
    return float(np.abs(out - affine).max() / np.abs(out).max())


@dataclasses.dataclass
class LooksLinearComparison(Result):
    """Deep plain networks trained from the looks-linear and the usual initializations (one
    seed).

    Attributes:
        inits: the initializations compared (:data:`~keras_resnet_lab.models.mlp.INITS`).
        blocks: two-layer blocks of every network (``2 * blocks`` hidden layers).
        width: units per hidden layer.
        epochs: training epochs of every run.
        learning_rates: the Adam learning rates every initialization was trained at.
        batch_size: examples per step.
        seed: seed of the initializations and of the data order.
        runs: init -> one dict per learning rate: ``lr``, ``init_linearity_error``,
            ``init_train_loss``, ``init_train_accuracy``, ``train_loss``, ``train_accuracy``,
            ``test_loss``, ``test_accuracy``, ``epoch_loss`` and ``epoch_accuracy`` (the
            training history).
        best: init -> its run at the learning rate of the best final training accuracy.
        train_examples, test_examples: sizes of the data.
    """

    inits: list
    blocks: int
    width: int
    epochs: int
    learning_rates: list
    batch_size: int
    seed: int
    runs: dict
    best: dict
    train_examples: int
    test_examples: int

    figure_columns = 2

    @property
    def hidden_layers(self):
        """Hidden layers of every network (``2 * blocks``)."""
        return 2 * self.blocks

    def accuracy_gap(self, other="he_relu"):
        """Final training accuracy of ``looks_linear`` minus that of ``other`` (best runs)."""
        other = one_of("other", other, tuple(self.best))
        return self.best["looks_linear"]["train_accuracy"] - self.best[other]["train_accuracy"]

    def statistics(self):
        """Balduzzi et al.'s finding in the registry's units: ``{"balduzzi_looks_linear":
        {"accuracy_gap": 100 x (final training accuracy of looks_linear - he_relu)}}``, each
        initialization at its best learning rate."""
        return {"balduzzi_looks_linear": {"accuracy_gap": 100 * self.accuracy_gap("he_relu")}}

    def notes(self):
        return {"balduzzi_looks_linear": (
            f"A plain dense net of {self.hidden_layers} hidden layers of {self.width} units "
            f"(no shortcuts, no normalization), {self.epochs} epoch(s) of Adam; training "
            "accuracy on the whole training set in inference mode, each initialization at its "
            "best learning rate. Linearity at initialization is reported per seed.")}

    def describe(self):
        ll, he = self.best["looks_linear"], self.best["he_relu"]

        def arm(run):
            return (f"{run['train_accuracy']:.1%} training accuracy ({run['test_accuracy']:.1%} "
                    f"test) at learning rate {run['lr']:g}, from a linearity error of "
                    f"{run['init_linearity_error']:.2g} at initialization")

        text = (f"Plain dense networks of {self.hidden_layers} hidden layers of {self.width} "
                f"units (no shortcuts, no normalization) trained {self.epochs} "
                f"epoch{'' if self.epochs == 1 else 's'} with Adam on {self.train_examples} "
                f"examples: the looks-linear one reached {arm(ll)}, "
                f"the He/ReLU one {arm(he)}")
        if "he_crelu" in self.best:
            text += f", and the CReLU one with He kernels {arm(self.best['he_crelu'])}"
        text += f" (chance is {CHANCE_ACCURACY:.0%}). "
        text += (f"The looks-linear network ends {self.accuracy_gap():.1%} ahead of the "
                 "He/ReLU one in training accuracy.")
        return text

    def draw(self, axes):
        ax1, ax2 = axes[:2]
        for i, (init, run) in enumerate(self.best.items()):
            epochs = np.arange(len(run["epoch_loss"]) + 1)
            label = f"{init} (lr {run['lr']:g})"
            ax1.plot(epochs, [run["init_train_loss"]] + list(run["epoch_loss"]), "o-", ms=3,
                     color=f"C{i}", label=label)
            ax2.plot(epochs, [run["init_train_accuracy"]] + list(run["epoch_accuracy"]), "o-",
                     ms=3, color=f"C{i}", label=label)
        ax1.set(xlabel="epoch", ylabel="training loss", yscale="log",
                title=f"Plain net, {self.hidden_layers} hidden layers, no BN")
        ax2.axhline(CHANCE_ACCURACY, color="gray", lw=1, ls="--", label="chance")
        ax2.set(xlabel="epoch", ylabel="training accuracy", ylim=(0, 1),
                title="Looks-linear vs He initialization")
        for ax in (ax1, ax2):
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)


def _inits(inits):
    if isinstance(inits, str) or not hasattr(inits, "__iter__"):
        inits = (inits,)
    inits = [one_of("inits", init, INITS) for init in inits]
    if len(set(inits)) != len(inits):
        raise ValueError(f"`inits` must not repeat an initialization, got {inits!r}.")
    missing = [init for init in ("looks_linear", "he_relu") if init not in inits]
    if missing:
        raise ValueError(f"`inits` must include 'looks_linear' and 'he_relu' (the finding "
                         f"compares them; 'he_crelu' is optional), got {inits!r}.")
    return inits



def compare_initializations(train, test, *, inits=("looks_linear", "he_relu"), blocks=25,
                            width=32, epochs=6, learning_rates=(1e-3,), batch_size=64, seed=0,
                            progress_bar=True, verbose=0):
    """Train a deep plain dense network from each initialization and compare (Balduzzi et al.,
    arXiv 1702.08591).

    Every run builds :func:`~keras_resnet_lab.models.mlp.plain_mlp` (``blocks`` two-layer
    blocks of ``width`` units, no shortcuts, no normalization, no hidden biases) after
    ``keras.utils.set_random_seed(seed)``, so the initializations of one kind and the data
    order are the same at every learning rate; measures its :func:`linearity_error` (on the
    first 64 test inputs) and training loss and accuracy at initialization; trains it with Adam
    and scores it on ``train`` and ``test``. Each initialization is reported at the learning
    rate of its best final training accuracy. The defaults are those of
    ``benchmarks/looks_linear_balduzzi.py --quick`` (50 hidden layers, 6 epochs, lr 1e-3).

    Args:
        train: ``(x, y)`` inputs (any shape; the network flattens them) and integer labels.
        test: ``(x, y)`` of the same input shape.
        inits: the initializations to compare, among
            :data:`~keras_resnet_lab.models.mlp.INITS`; ``"looks_linear"`` and ``"he_relu"``
            are required, ``"he_crelu"`` (CReLU with He kernels) is the control that shows the
            initialization, not CReLU, makes the difference.
        blocks: two-layer blocks (``2 * blocks`` hidden layers).
        width: units per hidden layer.
        epochs: training epochs of every run.
        learning_rates: the Adam learning rates each initialization is trained at.
        batch_size: examples per step.
        seed: seed of the initializations and of the data order (>= 0).
        progress_bar: show a progress bar over the runs.
        verbose: Keras ``fit`` verbosity.

    Returns:
        :class:`LooksLinearComparison`.

    Example:
        >>> from keras_resnet_lab.analysis._training import training_digits
        >>> train, test = training_digits(8, 3, batch_size=64)
        >>> result = compare_initializations(train, test)  # doctest: +SKIP
        >>> result.statistics(), result.best["looks_linear"]["train_accuracy"]  # doctest: +SKIP
        ({'balduzzi_looks_linear': {'accuracy_gap': 76.2...}}, 0.965...)
    """
    import keras

    inits = _inits(inits)
    blocks = positive_int("blocks", blocks)
    width = positive_int("width", width)
    epochs = positive_int("epochs", epochs)
    rates = learning_rates_list(learning_rates)
    batch_size = positive_int("batch_size", batch_size)
    seed = int_at_least("seed", seed, 0)
    progress_bar = boolean("progress_bar", progress_bar)
    verbose = one_of("verbose", verbose, (0, 1, 2, "auto"))
    train, test, _, num_classes = check_training_data(train, test, batch_size, datasets=False)
    if num_classes != round(1 / CHANCE_ACCURACY):
        raise ValueError(f"the labels must be the 10 classes 0-9 of the digits (the networks "
                         f"have 10 outputs; chance is {CHANCE_ACCURACY:.0%}), got {num_classes} "
                         "classes.")

    runs = {}
    grid = [(init, lr) for init in inits for lr in rates]
    for init, lr in progress(grid, desc=f"looks-linear x{len(grid)}", enabled=progress_bar):
        keras.utils.set_random_seed(seed)
        model = plain_mlp(blocks, width, init=init, input_shape=train[0].shape[1:], seed=seed)
        init_linearity = linearity_error(model, test[0][:64])
        init_loss, init_acc = loss_and_accuracy(model, train)
        history = train_arm(model, train, epochs, keras.optimizers.Adam(lr), batch_size,
                            verbose=verbose)
        train_loss, train_acc = loss_and_accuracy(model, train)
        test_loss, test_acc = loss_and_accuracy(model, test)
        runs.setdefault(init, []).append(dict(
            lr=lr, init_linearity_error=init_linearity, init_train_loss=init_loss,
            init_train_accuracy=init_acc, train_loss=train_loss, train_accuracy=train_acc,
            test_loss=test_loss, test_accuracy=test_acc, epoch_loss=history["loss"],
            epoch_accuracy=history["accuracy"]))
    # Each initialization at its best learning rate (by final training accuracy; the first on
    # a tie).
    best = {init: max(runs[init], key=lambda r: r["train_accuracy"]) for init in inits}
    return LooksLinearComparison(
        inits=inits, blocks=blocks, width=width, epochs=epochs, learning_rates=rates,
        batch_size=batch_size, seed=seed, runs=runs, best=best,
        train_examples=len(train[0]), test_examples=len(test[0]))
