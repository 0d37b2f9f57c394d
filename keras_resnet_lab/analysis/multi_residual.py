"""Multi-residual networks at equal parameters (Abdi & Nahavandi 2016, arXiv 1609.05672).

A multi-residual block sums ``k`` residual branches onto its shortcut,
``x_{l+1} = x_l + sum_{i=1..k} F_i(x_l)``. Unrolled, ``n`` such blocks have ``(k + 1)**n``
paths, ``C(n, j) * k**j`` of them through ``j`` branches. Abdi & Nahavandi trade depth for
branches: at the same parameter count, fewer blocks with more branches (Multi-ResNet-200, k = 5,
10.2M parameters: 4.35% CIFAR-10 error) are at least as accurate as a deeper ResNet
(Pre-ResNet-1001, 10.2M: 4.62%).

This module builds such matched networks (``blocks x k`` branches per stage for each ``k``),
checks that their parameter counts are equal, trains and compares them.

When are the counts exactly equal? Every branch of a post-activation basic block is
``conv(c_in -> w)``, ``conv(w -> w)`` and their batch norms; a stage of ``b`` blocks of ``k``
branches holds ``b * k`` branches. They all read ``w`` channels except those of the stage's first
block, which read the previous stage's ``c_in`` channels: one branch of the deep net, but all
``k`` branches of the wide one. So the counts match exactly when every stage has the width of its
input (equal widths) and the shortcuts are option A (parameter-free) or B (a projection in the
first block of each strided stage, in both nets). With widening stages (16/32/64) the k-branch
net has ``9 (k - 1) w (w - c_in)`` fewer weights in each widening stage; option C puts a
projection in every block, and pre-activation blocks (``preact=True``) share one batch norm among
a block's branches, so with either the net with fewer blocks has fewer weights.
:func:`equal_parameter_networks` refuses unequal counts unless told otherwise.
"""

import dataclasses
import math

import numpy as np

from keras_resnet_lab._checks import number_in, one_of, positive_int
from keras_resnet_lab.analysis._common import check_data, progress
from keras_resnet_lab.analysis._training import check_training_data, train_arm
from keras_resnet_lab.analysis.results import Result
from keras_resnet_lab.models.chain import blocks
from keras_resnet_lab.models.cifar import cifar_network

OPTIMIZERS = ("sgd", "adam")


def branch_factorizations(total_branches, branches=None):
    """The ``(blocks, k)`` pairs with ``blocks * k == total_branches``: the networks of one
    stage budget of ``total_branches`` residual branches.

    Args:
        total_branches: residual branches per stage (blocks x branches per block).
        branches: the ``k`` values wanted (each must divide ``total_branches``); default every
            divisor.

    Returns:
        list of ``(blocks, k)`` ordered by ``k``.

    Example:
        >>> branch_factorizations(12)
        [(12, 1), (6, 2), (4, 3), (3, 4), (2, 6), (1, 12)]
        >>> branch_factorizations(4, branches=(1, 4))
        [(4, 1), (1, 4)]
    """
    total = positive_int("total_branches", total_branches)
    if branches is None:
        ks = [k for k in range(1, total + 1) if total % k == 0]
    else:
        if isinstance(branches, (int, np.integer)) or not hasattr(branches, "__iter__"):
            branches = (branches,)
        ks = sorted({positive_int("branches", k) for k in branches})
        if not ks:
            raise ValueError("`branches` must list at least one branch count k, got none.")
        bad = [k for k in ks if total % k]
        if bad:
            divisors = [k for k in range(1, total + 1) if total % k == 0]
            raise ValueError(f"`branches` must divide total_branches={total} (allowed: "
                             f"{divisors}), got {bad}.")
    return [(total // k, k) for k in ks]


def path_length_counts(branches_per_block, plain=None):
    """Exact number of paths of each length through a chain of (multi-)residual blocks.

    Block ``i`` offers its skip (unless plain) or one of its ``k_i`` branches, so the counts are
    the coefficients of ``prod_i (1 + k_i x)`` (``k_i x`` for a plain block): ``C(n, j) * k**j``
    of ``(k + 1)**n`` paths have length ``j`` when every block has ``k`` branches.

    Args:
        branches_per_block: ``k_i`` of each block, in chain order.
        plain: optional booleans, True for a block without a shortcut.

    Returns:
        list of ints, ``counts[j]`` = paths through exactly ``j`` branches (``j = 0..n``).

    Example:
        >>> path_length_counts([1, 4])   # (1 + x)(1 + 4x)
        [1, 5, 4]
    """
    ks = [positive_int("branches_per_block", k) for k in branches_per_block]
    if not ks:
        raise ValueError("`branches_per_block` must list at least one block, got none.")
    plain = [False] * len(ks) if plain is None else [bool(p) for p in plain]
    if len(plain) != len(ks):
        raise ValueError(f"`plain` must have one entry per block ({len(ks)}), got {len(plain)}.")
    counts = [1]
    for k, no_skip in zip(ks, plain):
        skip = 0 if no_skip else 1
        new = [0] * (len(counts) + 1)
        for j, c in enumerate(counts):
            new[j] += skip * c
            new[j + 1] += k * c
        counts = new
    return counts


def parameter_count(model, trainable_only=True):
    """Number of parameters of ``model``, as an exact int.

    Args:
        model: a built Keras model.
        trainable_only: count only trainable weights (False adds e.g. the batch-norm moving
            statistics).

    Returns:
        int.

    Example:
        >>> parameter_count(cifar_network(1, widths=(4,), input_shape=(8, 8, 3)))
        470
    """
    weights = model.trainable_weights if trainable_only else model.weights
    return int(sum(math.prod(int(d) for d in w.shape) for w in weights))


@dataclasses.dataclass
class MultiResidualConfig:
    """One network of a comparison: its shape, parameter counts and paths.

    ``branches`` is the ``k`` shared by every block (None when blocks differ; see
    ``branches_per_block``); ``params`` counts trainable parameters, ``total_params`` also the
    batch-norm statistics; ``paths`` = ``sum(path_counts)`` = ``prod(k_i + 1)``.
    """

    name: str
    blocks_per_stage: list
    branches: int
    branches_per_block: list
    n_blocks: int
    params: int
    total_params: int
    paths: int
    path_counts: list

    @property
    def mean_path_length(self):
        """Mean number of branches on a path."""
        return sum(j * c for j, c in enumerate(self.path_counts)) / self.paths

    def to_dict(self):
        """The config as a JSON-safe dict (with ``mean_path_length``)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["mean_path_length"] = self.mean_path_length
        return values


def describe_network(model):
    """Shape, parameter counts and exact path counts of a chain model of residual-type blocks.

    Args:
        model: a chain model (``stage{s}_block{b}`` blocks), e.g. from ``cifar_network``.

    Returns:
        :class:`MultiResidualConfig`.

    Example:
        >>> config = describe_network(multi_residual_net(8, branches=4))
        >>> config.paths  # 3 blocks of 4 branches: 5**3
        125
    """
    found = blocks(model)
    ks = [int(getattr(b.layer, "branches", 1)) for b in found]
    plain = [bool(getattr(b.layer, "plain", False)) for b in found]
    stages = sorted({b.stage for b in found})
    counts = path_length_counts(ks, plain)
    return MultiResidualConfig(
        name=model.name, blocks_per_stage=[sum(b.stage == s for b in found) for s in stages],
        branches=ks[0] if len(set(ks)) == 1 else None, branches_per_block=ks,
        n_blocks=len(found), params=parameter_count(model),
        total_params=parameter_count(model, trainable_only=False), paths=sum(counts),
        path_counts=counts)


def _check_equal(configs, widths, shortcut):
    counts = {config.name: config.params for config in configs}
    if len(set(counts.values())) > 1:
        raise ValueError(
            f"the networks' trainable parameter counts differ: {counts}. Exact equality needs "
            "every stage as wide as its input (the k branches of a widening stage's first "
            f"block all read the narrower input: got widths={tuple(widths)}), post-activation "
            "blocks (preact=True shares one pre-activation batch norm among a block's k "
            "branches, so fewer blocks have fewer of them) and shortcut 'A' or 'B' (got "
            f"{shortcut!r}; 'C' puts a projection in every block); or pass "
            "require_equal=False.")


def equal_parameter_networks(total_branches, branches=(1, 4), *, widths=(16, 16, 16),
                             input_shape=(32, 32, 3), num_classes=10, shortcut="A",
                             require_equal=True, **network_kwargs):
    """Networks with the same residual-branch budget, one per ``k``: ``total_branches / k``
    multi-residual blocks of ``k`` branches in every stage (Abdi & Nahavandi, arXiv 1609.05672).

    With ``total_branches=4, branches=(1, 4)`` and three stages: 12 ordinary residual blocks
    against 3 blocks of 4 branches. Their parameter counts are exactly equal when every stage has
    the width of its input, with post-activation blocks and option A or B shortcuts (see the
    module docstring); ``require_equal`` refuses a set of networks whose trainable parameter
    counts differ.

    Args:
        total_branches: residual branches per stage, blocks x k.
        branches: the branch counts ``k`` to build (each must divide ``total_branches``).
        widths: channels of each stage (equal widths give exactly equal parameter counts).
        input_shape: image shape without the batch axis.
        num_classes: classes of the classifier head.
        shortcut: ``"A"`` (parameter-free), ``"B"`` (projection where the shape changes) or
            ``"C"`` (a projection in every block: unequal counts).
        require_equal: raise ValueError when the trainable parameter counts differ.
        **network_kwargs: passed to :func:`keras_resnet_lab.models.cifar.cifar_network`
            (``preact``, ``bottleneck``, ``stem_width`` ...).

    Returns:
        list of ``(model, MultiResidualConfig)``, ordered by ``k``; models are named
        ``multires_b{blocks}_k{k}``.

    Example:
        >>> pairs = equal_parameter_networks(4, (1, 4), widths=(8, 8, 8), input_shape=(8, 8, 3))
        >>> [c.params for _, c in pairs]  # exactly equal
        [14530, 14530]
    """
    pairs = branch_factorizations(total_branches, branches)
    widths = tuple(positive_int("widths", w) for w in widths)
    shortcut = one_of("shortcut", shortcut, ("A", "B", "C"))
    if "block" in network_kwargs or "blocks_per_stage" in network_kwargs:
        raise ValueError("`block` and `blocks_per_stage` are set by equal_parameter_networks "
                         "(block='multi_residual', total_branches / k blocks per stage).")
    built = []
    for blocks_per_stage, k in pairs:
        model = cifar_network(blocks_per_stage, block="multi_residual", branches=k,
                              widths=widths, input_shape=tuple(input_shape),
                              num_classes=num_classes, shortcut=shortcut,
                              name=f"multires_b{blocks_per_stage}_k{k}", **network_kwargs)
        built.append((model, describe_network(model)))
    if require_equal:
        _check_equal([config for _, config in built], widths, shortcut)
    return built


@dataclasses.dataclass
class MultiResidualComparison(Result):
    """Networks of equal residual-branch budget trained alike: accuracy against branches k.

    ``configs[i]`` describes network ``i`` (see :class:`MultiResidualConfig`);
    ``test_accuracy[i][s]`` / ``test_loss[i][s]`` are its final test numbers with seed
    ``seeds[s]`` and ``curves[i][s]`` its test accuracy after each epoch; ``mean_accuracy[i]``
    and ``std_accuracy[i]`` are over seeds.
    """

    total_branches: int
    configs: list
    seeds: list
    epochs: int
    test_accuracy: list
    test_loss: list
    curves: list
    mean_accuracy: list
    std_accuracy: list

    figure_columns = 3

    def index(self, branches):
        """Position of the network with ``branches`` branches per block."""
        for i, config in enumerate(self.configs):
            if config["branches"] == branches:
                return i
        allowed = [c["branches"] for c in self.configs]
        raise ValueError(f"`branches` must be one of {allowed}, got {branches!r}.")

    def accuracy_gap(self, branches, baseline=1):
        """Mean test accuracy of the ``branches``-branch net minus that of the ``baseline`` one
        (positive: more branches, fewer blocks was better)."""
        return self.mean_accuracy[self.index(branches)] - self.mean_accuracy[
            self.index(baseline)]

    def statistics(self):
        """Abdi & Nahavandi's finding in the registry's units: ``{"abdi_multires":
        {"accuracy_gap": 100 x (test accuracy of the net with the most branches per block -
        the one with the fewest)}}`` (k = 4 minus k = 1 by default), paired by seed: for the
        seed of a one-seed run (as :func:`~keras_resnet_lab.analysis.comparisons.
        run_comparison` runs it), the mean over the seeds otherwise."""
        ks = [c["branches"] for c in self.configs]
        return {"abdi_multires": {"accuracy_gap": 100 * self.accuracy_gap(max(ks), min(ks))}}

    def notes(self):
        ks = sorted(c["branches"] for c in self.configs)
        blocks = {c["branches"]: c["n_blocks"] for c in self.configs}
        return {"abdi_multires": (
            f"{blocks[ks[-1]]} blocks of k = {ks[-1]} against {blocks[ks[0]]} of k = {ks[0]}, "
            f"{self.configs[0]['params']:,} trainable parameters each, {self.epochs} epochs; "
            "final test accuracy.")}

    def draw(self, axes):
        ax1, ax2, ax3 = axes
        labels = [f"{c['n_blocks']} blocks\nk = {c['branches']}" for c in self.configs]
        positions = np.arange(len(self.configs))
        ax1.bar(positions, self.mean_accuracy, yerr=self.std_accuracy, color="C0", alpha=0.7,
                capsize=4)
        for i, accs in enumerate(self.test_accuracy):
            ax1.plot([i] * len(accs), accs, "k.", ms=6)
        low = min(min(a) for a in self.test_accuracy)
        ax1.set_ylim(max(0.0, low - 0.05), min(1.0, max(self.mean_accuracy) + 0.05))
        ax1.set_xticks(positions, labels)
        params = self.configs[0]["params"]
        ax1.set(ylabel="test accuracy",
                title=f"{params:,} parameters each, {len(self.seeds)} seed(s)")
        for i, config in enumerate(self.configs):
            curve = np.mean(np.asarray(self.curves[i], dtype=float), axis=0)
            ax2.plot(range(1, len(curve) + 1), curve, "o-", ms=3, color=f"C{i}",
                     label=labels[i].replace("\n", ", "))
            counts = np.asarray(config["path_counts"], dtype=float)
            ax3.plot(range(len(counts)), counts / counts.sum(), "o-", ms=3, color=f"C{i}",
                     label=f"k = {config['branches']}: {config['paths']:,} paths")
        ax2.set(xlabel="epoch", ylabel="test accuracy (mean over seeds)", title="Training")
        ax3.set(xlabel="path length (branches on the path)", ylabel="fraction of paths",
                title="Paths: C(n, j) k^j of (k + 1)^n")
        for ax in (ax2, ax3):
            ax.legend(fontsize=8)
        for ax in axes:
            ax.grid(alpha=0.3)


def _optimizer(name, learning_rate, total_steps, weight_decay):
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, total_steps))
    if name == "sgd":
        return keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=weight_decay or None)
    if weight_decay:
        return keras.optimizers.AdamW(schedule, weight_decay=weight_decay)
    return keras.optimizers.Adam(schedule)


def compare_multi_residual(train, test, *, total_branches=4, branches=(1, 4), seeds=(0,),
                           epochs=10, batch_size=64, learning_rate=0.05, optimizer="sgd",
                           weight_decay=5e-4, steps_per_epoch=None, widths=(16, 16, 16),
                           num_classes=10, shortcut="A", require_equal=True,
                           jit_compile="auto", verbose=0, progress_bar=True,
                           **network_kwargs):
    """Train networks of equal parameter count, one per branch count ``k``, and compare their
    test accuracy (Abdi & Nahavandi, arXiv 1609.05672: fewer blocks with more branches are at
    least as accurate).

    Every network is built by :func:`equal_parameter_networks` and trained alike by
    :func:`~keras_resnet_lab.analysis._training.train_arm` (cosine-decayed ``learning_rate``,
    same epochs and batches); with each seed the initialization and data order are seeded by
    ``keras.utils.set_random_seed(seed)``.

    Args:
        train: ``(x, y)`` arrays, or a batched ``tf.data.Dataset`` (then give
            ``steps_per_epoch`` unless its length is known).
        test: ``(x, y)`` images and integer labels (evaluated after every epoch).
        total_branches: residual branches per stage, blocks x k.
        branches: the branch counts ``k`` to compare.
        seeds: one training run of every network per seed (one seed per call when the
            seeds are judged as independent runs:
            :func:`~keras_resnet_lab.analysis.comparisons.run_comparison` does so).
        epochs: training epochs.
        batch_size: batch size with array data.
        learning_rate: peak learning rate (> 0).
        optimizer: ``"sgd"`` (momentum 0.9) or ``"adam"`` (AdamW with ``weight_decay``).
        weight_decay: decoupled weight decay (0 for none).
        steps_per_epoch: steps of a ``tf.data.Dataset`` epoch (for the schedule).
        widths, num_classes, shortcut, require_equal, **network_kwargs: as in
            :func:`equal_parameter_networks`.
        jit_compile: passed to ``model.compile`` (False skips XLA compilation, which costs
            more than it saves in short CPU runs).
        verbose: Keras ``fit`` verbosity.
        progress_bar: show a progress bar over the training runs.

    Returns:
        :class:`MultiResidualComparison`.

    Example:
        >>> result = compare_multi_residual((x_train, y_train), (x_test, y_test),
        ...                                 total_branches=4, branches=(1, 4), epochs=5)
        >>> result.statistics()["abdi_multires"]["accuracy_gap"]  # points, k = 4 minus k = 1
    """
    import keras

    total = positive_int("total_branches", total_branches)
    pairs = branch_factorizations(total, branches)
    if isinstance(seeds, (int, np.integer)):
        seeds = (seeds,)
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0
                        for s in seeds):
        raise ValueError(f"`seeds` must be a non-empty list of integers >= 0, got {seeds!r}.")
    if len(set(int(s) for s in seeds)) != len(seeds):
        raise ValueError(f"`seeds` must not repeat a seed, got {seeds!r}.")
    epochs = positive_int("epochs", epochs)
    batch_size = positive_int("batch_size", batch_size)
    learning_rate = number_in("learning_rate", learning_rate, 0.0, None, low_open=True)
    weight_decay = number_in("weight_decay", weight_decay, 0.0, None)
    optimizer = one_of("optimizer", optimizer, OPTIMIZERS)
    jit_compile = one_of("jit_compile", jit_compile, ("auto", True, False))
    arrays = isinstance(train, (tuple, list))
    # Arrays: one epoch is a pass over them (a given steps_per_epoch is for datasets).
    train, test, steps, _ = check_training_data(
        train, test, batch_size, None if arrays else steps_per_epoch, need_steps=True)
    input_shape = test[0].shape[1:]

    def build(k, seed):
        keras.utils.set_random_seed(int(seed))
        return equal_parameter_networks(
            total, (k,), widths=widths, input_shape=input_shape, num_classes=num_classes,
            shortcut=shortcut, require_equal=False, **network_kwargs)[0]

    # Every network (initialized with the first seed) exists before any training: unequal
    # parameter counts are refused up front.
    first = [build(k, seeds[0]) for _, k in pairs]
    configs = [config for _, config in first]
    if require_equal:
        _check_equal(configs, widths, shortcut)
    test = check_data(first[0][0], test)
    results = {}
    runs = [(i, s) for i in range(len(pairs)) for s in seeds]
    for i, seed in progress(runs, desc=f"multi-residual x{len(runs)}", enabled=progress_bar):
        # A later seed trains a network built anew from its own seed: an independent run.
        model = first[i][0] if seed == seeds[0] else build(pairs[i][1], seed)[0]
        history = train_arm(
            model, train, epochs, _optimizer(optimizer, learning_rate, epochs * steps,
                                             weight_decay),
            batch_size, validation_data=test, steps_per_epoch=None if arrays else steps,
            jit_compile=jit_compile, seed=seed, verbose=verbose)
        # The last validation is the final test evaluation (same weights, same data).
        results[(seed, i)] = (history["val_accuracy"][-1], history["val_loss"][-1],
                              history["val_accuracy"])
    accuracy = [[results[(s, i)][0] for s in seeds] for i in range(len(pairs))]
    return MultiResidualComparison(
        total_branches=total, configs=[c.to_dict() for c in configs],
        seeds=[int(s) for s in seeds], epochs=epochs, test_accuracy=accuracy,
        test_loss=[[results[(s, i)][1] for s in seeds] for i in range(len(pairs))],
        curves=[[results[(s, i)][2] for s in seeds] for i in range(len(pairs))],
        mean_accuracy=[float(np.mean(a)) for a in accuracy],
        std_accuracy=[float(np.std(a)) for a in accuracy])
