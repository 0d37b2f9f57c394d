"""What the training comparisons share: their default data, one way to train an arm, accuracy.

A *comparison* (highway depth, residual scaling, weight sharing, looks-linear initialization)
trains a few small networks alike and compares them; every arm is trained by :func:`train_arm`
and scored by :func:`accuracy` or :func:`loss_and_accuracy`, so the arms differ only where the
experiment says.
"""

import math
import numbers

import numpy as np

from keras_resnet_lab._checks import examples, number_in, positive_int


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


def check_training_data(train, test, batch_size, steps_per_epoch=None, need_steps=False,
                        datasets=True):
    """Check a comparison's ``train`` (``(x, y)`` arrays, or a batched ``tf.data.Dataset``
    unless ``datasets`` is False) and ``test`` (arrays); the arrays are checked by
    :func:`keras_resnet_lab._checks.examples` (finite inputs, labels whole numbers >= 0).

    Returns:
        ``(train, test, steps_per_epoch, num_classes)``: the steps of one epoch (from the
        arrays and ``batch_size``, else the dataset's length; None when unknown, unless
        ``need_steps``, which raises) and the number of classes (largest label + 1, at least 2).
    """
    test = examples("test", test)
    labels = [test[1]]
    if isinstance(train, (tuple, list)) or not datasets or not _is_dataset(train):
        dataset = None
        if datasets:
            dataset = "a batched tf.data.Dataset of (x, y)" + (
                " of known length (else give `steps_per_epoch`)" if need_steps else "")
        train = examples("train", train, dataset=dataset)
        if train[0].shape[1:] != test[0].shape[1:]:
            raise ValueError(f"`train` and `test` inputs must have the same shape per example, "
                             f"got {train[0].shape[1:]} and {test[0].shape[1:]}.")
        labels.append(train[1])
        if steps_per_epoch is None:
            steps_per_epoch = math.ceil(len(train[0]) / positive_int("batch_size", batch_size))
    elif steps_per_epoch is None:
        cardinality = int(train.cardinality().numpy())
        steps_per_epoch = cardinality if cardinality > 0 else None
        if steps_per_epoch is None and need_steps:
            raise ValueError("`steps_per_epoch` is needed for the cosine schedule: the "
                             "length of `train` (a dataset) is unknown or infinite.")
    if steps_per_epoch is not None:
        steps_per_epoch = positive_int("steps_per_epoch", steps_per_epoch)
    return train, test, steps_per_epoch, max(2, max(int(y.max()) for y in labels) + 1)


def _is_dataset(value):
    """Whether ``value`` is a ``tf.data.Dataset`` (TensorFlow is imported only to ask)."""
    import tensorflow as tf

    return isinstance(value, tf.data.Dataset)


def learning_rates(values):
    """``values`` (one rate or several) as a list of distinct learning rates > 0."""
    if isinstance(values, numbers.Number) or not hasattr(values, "__iter__"):
        values = (values,)
    rates = [number_in("learning_rates", lr, 0.0, None, low_open=True) for lr in values]
    if not rates:
        raise ValueError("`learning_rates` must list at least one learning rate > 0, got none.")
    if len(set(rates)) != len(rates):
        raise ValueError(f"`learning_rates` must not repeat a rate, got {rates!r}.")
    return rates


def train_arm(model, train, epochs, optimizer, batch_size=64, *, recorder=None,
              validation_data=None, steps_per_epoch=None, jit_compile=False, seed=None,
              verbose=0):
    """Compile ``model`` (cross-entropy on its logits, or on its probabilities when it ends in
    a softmax; accuracy) and fit it on ``train``: the compile and ``model.fit`` steps of
    :func:`keras_resnet_lab.training.fit` (``compile_classifier``, ``run_epochs``), without its
    output folder, backup and recipe.

    No XLA by default: compiling a deep graph costs more than a short CPU run. The optimizer's
    variables are made eagerly (made inside the traced step they would cost a second trace).

    Args:
        model: a Keras classifier.
        train: ``(x, y)`` arrays, or a batched ``tf.data.Dataset`` of ``(x, y)`` (then
            ``batch_size`` is unused).
        epochs: training epochs.
        optimizer: a Keras optimizer.
        batch_size: examples per step (data shuffled every epoch with Keras's seeded RNG).
        recorder: a :class:`~keras_resnet_lab.analysis.norms.LossRecorder` (per-step losses,
            stops on a non-finite loss), or None.
        validation_data: ``(x, y)`` arrays evaluated after every epoch (``val_`` keys).
        steps_per_epoch: steps of an epoch of a dataset (None: one pass over it).
        jit_compile: passed to ``model.compile``.
        seed: reseed Keras (``keras.utils.set_random_seed``) just before training, so that
            the data order depends on the seed alone; None leaves the generators as they are.
        verbose: Keras ``fit`` verbosity.

    Returns:
        The history dict (``loss``, ``accuracy``, and the ``val_`` ones, per finished epoch).
    """
    import keras

    from keras_resnet_lab.training.loop import run_epochs
    from keras_resnet_lab.training.recipes import compile_classifier

    compile_classifier(model, optimizer, jit_compile=jit_compile)
    model.optimizer.build(model.trainable_variables)
    epochs = positive_int("epochs", epochs)
    arrays = isinstance(train, (tuple, list))
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    history = run_epochs(model, train, epochs,
                         batch_size=positive_int("batch_size", batch_size) if arrays else None,
                         steps_per_epoch=steps_per_epoch, validation_data=validation_data,
                         callbacks=[recorder] if recorder is not None else [], verbose=verbose)
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def growth_and_stability(model, train, probe, epochs, optimizer, batch_size, *, chance_loss,
                         blowup_factor, batch_statistics=False, verbose=0):
    """``||h_i|| / ||h_0||`` of ``model`` on ``probe`` at initialization, then training with
    every step's loss recorded (stopping at a non-finite one): the arm of the scaling and the
    weight-sharing comparisons.

    With ``batch_statistics`` the growth is measured in training mode, the whole probe as one
    batch (what the first training steps see). Returns ``(NormGrowthResult,
    TrainingStability)``, the stability judged against ``chance_loss`` and ``blowup_factor``.
    """
    from keras_resnet_lab.analysis.norms import LossRecorder, norm_growth

    if batch_statistics:
        growth = norm_growth(model, probe, training=True, batch_size=len(probe))
    else:
        growth = norm_growth(model, probe)
    recorder = LossRecorder(stop_on_nonfinite=True)
    train_arm(model, train, epochs, optimizer, batch_size, recorder=recorder, verbose=verbose)
    return growth, recorder.stability(reference=chance_loss, blowup_factor=blowup_factor)


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
