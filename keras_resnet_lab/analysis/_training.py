"""What the training comparisons share: their default data, one way to train an arm, accuracy.

A *comparison* (highway depth, residual scaling, weight sharing, looks-linear initialization,
multi-residual) trains a few small networks alike and compares them; every arm is trained by
:func:`train_arm` and scored by :func:`accuracy`, so the arms differ only where the experiment
says.
"""

import math

import numpy as np

from keras_resnet_lab._checks import positive_int


def training_digits(image_size=8, channels=3, batch_size=None, flatten=False):
    """The embedded digits ``((x_train, y_train), (x_test, y_test))`` for a comparison.

    With ``batch_size`` the training set is cut to a multiple of it (1408 of 1437 for 64), so
    every training step has the same shape and the step is traced once; ``flatten`` gives
    vectors of ``image_size**2 * channels`` features.

    Example:
        >>> (x, y), test = training_digits(8, channels=1, batch_size=64, flatten=True)
        >>> x.shape
        (1408, 64)
    """
    from keras_resnet_lab.data import load_digits

    (x_train, y_train), (x_test, y_test) = load_digits(image_size=image_size,
                                                       channels=channels)
    if batch_size:
        keep = len(x_train) - len(x_train) % positive_int("batch_size", batch_size)
        x_train, y_train = x_train[:keep], y_train[:keep]
    if flatten:
        x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    return (x_train, y_train), (x_test, y_test)


def check_pair(name, data):
    """``data`` = ``(x, y)``: equally long, non-empty arrays; returns them as numpy arrays."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"`{name}` must be a pair (x, y) of arrays (inputs, integer labels), "
                         f"got {type(data).__name__}.")
    x, y = np.asarray(data[0], dtype=np.float32), np.asarray(data[1])
    if len(x) == 0 or len(x) != len(y) or y.ndim != 1:
        raise ValueError(f"`{name}` must hold equally many inputs and integer labels (one "
                         f"label each, at least one example), got shapes {x.shape} and "
                         f"{y.shape}.")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"`{name}` inputs contain NaN or infinite values.")
    return x, y.astype(np.int64)


def train_arm(model, train, epochs, optimizer, batch_size=64, *, recorder=None, verbose=0):
    """Compile ``model`` (cross-entropy on logits, accuracy) and fit it on ``train``.

    No XLA: compiling a deep graph costs more than a short CPU run. The optimizer's variables
    are made eagerly (made inside the traced step they would cost a second trace).

    Args:
        model: a Keras classifier with logit outputs.
        train: ``(x, y)`` arrays, or a batched ``tf.data.Dataset`` of ``(x, y)`` (then
            ``batch_size`` is unused).
        epochs: training epochs.
        optimizer: a Keras optimizer.
        batch_size: examples per step (data shuffled every epoch with Keras's seeded RNG).
        recorder: a :class:`~keras_resnet_lab.analysis.norms.LossRecorder` (per-step losses,
            stops on a non-finite loss), or None.
        verbose: Keras ``fit`` verbosity.

    Returns:
        The history dict (``loss``, ``accuracy`` per finished epoch).
    """
    import keras

    model.compile(optimizer=optimizer, jit_compile=False, metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.optimizer.build(model.trainable_variables)
    fit = dict(epochs=positive_int("epochs", epochs), verbose=verbose,
               callbacks=[recorder] if recorder is not None else [])
    if isinstance(train, (tuple, list)):
        history = model.fit(train[0], train[1], batch_size=positive_int("batch_size", batch_size),
                            shuffle=True, **fit)
    else:
        history = model.fit(train, **fit)
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def accuracy(model, data, training=False, batch_size=256):
    """Top-1 accuracy of ``model`` on ``data`` = ``(x, y)`` by eager forward passes (no traced
    test step); an example whose logits are not finite counts as wrong. ``training=True``
    normalizes each batch of ``batch_size`` with its own batch-norm statistics."""
    x, y = data
    correct = 0
    for lo in range(0, len(x), batch_size):
        out = np.asarray(model(x[lo:lo + batch_size], training=training))
        ok = np.isfinite(out).all(axis=1) & (out.argmax(axis=1) == y[lo:lo + batch_size])
        correct += int(ok.sum())
    return correct / len(x)


def loss_and_accuracy(model, data, batch_size=512):
    """Mean cross-entropy (from logits; NaN if the outputs are not finite) and accuracy."""
    from keras_resnet_lab.analysis._common import per_example_loss

    x, y = data
    losses, correct = [], 0
    for lo in range(0, len(x), batch_size):
        out = np.asarray(model(x[lo:lo + batch_size], training=False), dtype=np.float64)
        losses.append(np.asarray(per_example_loss(out, y[lo:lo + batch_size], True)))
        correct += int(np.sum(np.isfinite(out).all(axis=1)
                              & (out.argmax(axis=1) == y[lo:lo + batch_size])))
    loss = float(np.mean(np.concatenate(losses)))
    return (loss if math.isfinite(loss) else float("nan")), correct / len(x)
