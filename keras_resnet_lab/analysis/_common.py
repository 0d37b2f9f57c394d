"""Helpers the experiments share: data checks, losses, progress bars, evaluating plans."""

import numpy as np

from keras_resnet_lab._checks import (
    examples,
    finite_outputs,
    keras_model,
    positive_int,
)
from keras_resnet_lab.models.chain import blocks
from keras_resnet_lab.models.surgery import chain_steps, plan_model, run_plan
from keras_resnet_lab.training.recipes import output_applies_softmax


def check_model(model, name="model"):
    """``model`` if it is a functional Keras model with blocks ``stage{s}_block{b}``, else a
    ValueError (an analysis of a model without blocks would return an empty result)."""
    keras_model(name, model)
    blocks(model)
    return model


def check_data(model, data, max_examples=None, labels_used=True):
    """``data`` = ``(x, y)`` as float32 images matching ``model``'s input and int labels.

    The model must be a chain with blocks (:func:`check_model`) whose outputs on the first
    images are finite. Labels are one class index per image (or one-hot rows); with
    ``labels_used`` they must be whole numbers in ``[0, classes)`` (fractional or
    out-of-range labels are refused, not truncated); without, only their count is checked.
    The data are checked by :func:`keras_resnet_lab._checks.examples`.
    """
    check_model(model)
    x, y = examples("data", data, labels="classes" if labels_used else "any",
                    classes=model.outputs[0].shape[-1], shape=tuple(model.inputs[0].shape[1:]),
                    model_name=model.name, inputs="images", one_hot=True)
    if max_examples is not None:
        max_examples = positive_int("max_examples", max_examples)
        x, y = x[:max_examples], y[:max_examples]
    check_finite_outputs(model, x[:8])
    return x, (y if labels_used else np.zeros(len(x), np.int64))


def images_or_pair(data):
    """``data`` as an ``(x, y)`` pair: images alone get placeholder labels (for the analyses
    that do not use labels; :func:`check_data` with ``labels_used=False``)."""
    if isinstance(data, (tuple, list)):
        return data
    if data is None or isinstance(data, (str, bytes, dict, set)) or not hasattr(data, "__len__"):
        raise ValueError("`data` must be images (an array) or a pair (x, y) of arrays, got "
                         f"{type(data).__name__}.")
    return data, np.zeros(len(data), dtype=np.int64)


def check_finite_outputs(model, x):
    """Refuse a model whose outputs on ``x`` are NaN or infinite (diverged or corrupt weights):
    every number an analysis would report from it would be meaningless."""
    finite_outputs(model, x)


def per_example_loss(outputs, labels, from_logits):
    """Cross-entropy per example (a tensor of the outputs' backend)."""
    import keras

    return keras.losses.sparse_categorical_crossentropy(labels, outputs, from_logits=from_logits)


def batches(n, batch_size):
    """``[(start, stop), ...]`` covering ``range(n)``."""
    batch_size = positive_int("batch_size", batch_size)
    return [(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def progress(iterable=None, total=None, desc=None, enabled=True):
    """A tqdm progress bar: silent when ``enabled`` is False, and where standard error is not a
    terminal (a log file, a pipe), so that no control codes end up in a log."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=None if enabled else True,
                leave=False)


def evaluate_plans(model, data, plans, *, batch_size=256, cached=True, progress_bar=True,
                   desc="plans"):
    """Loss and accuracy of ``model`` and of each plan (see ``keras_resnet_lab.models.surgery``).

    With ``cached=True`` every batch goes through the intact chain once, keeping the input of
    each step; a plan then runs only from the first step where it departs from the intact
    chain, on that cached input. With ``cached=False`` each plan is built as its own model
    (:func:`plan_model`) and run from the input: one full forward per plan. Both run the same
    operations on the same values, so they give the same numbers.

    Returns:
        ``(intact, [per plan])`` where each entry is a dict ``{"loss", "accuracy", "correct",
        "example_loss"}``: the mean loss and the accuracy, and per example whether the
        prediction is right (bool array) and its loss (float32 array), in the order of
        ``data`` (for intervals by bootstrap over the examples).
    """
    x, y = data
    from_logits = not output_applies_softmax(model)
    intact = chain_steps(model)
    intact_keys = [(id(s.operation), id(s.node), False) for s in intact]
    models = None if cached else [plan_model(model, plan) for plan in plans]
    starts = []
    for plan in plans:
        keys = [item.key for item in plan]
        start = 0
        while start < min(len(keys), len(intact_keys)) and keys[start] == intact_keys[start]:
            start += 1
        starts.append(start)
    correct = np.zeros((len(plans) + 1, len(x)), dtype=bool)
    losses = np.zeros((len(plans) + 1, len(x)), dtype=np.float32)
    spans = batches(len(x), batch_size)
    bar = progress(total=len(spans) * (len(plans) + 1), desc=desc, enabled=progress_bar)
    for lo, hi in spans:
        xb, yb = x[lo:hi], y[lo:hi]
        h, cache = xb, []
        for step in intact:
            cache.append(h)
            h = step(h)
        cache.append(h)
        outputs = [h]
        bar.update(1)
        for j, plan in enumerate(plans):
            if models is not None:
                outputs.append(models[j](xb, training=False))
            else:
                outputs.append(run_plan(plan[starts[j]:], cache[starts[j]]))
            bar.update(1)
        for j, out in enumerate(outputs):
            out = np.asarray(out)
            losses[j, lo:hi] = np.asarray(per_example_loss(out, yb, from_logits))
            correct[j, lo:hi] = out.argmax(axis=-1) == yb
    bar.close()
    scores = [{"loss": float(np.sum(loss, dtype=np.float64)) / len(x),
               "accuracy": int(np.sum(right)) / len(x), "correct": right,
               "example_loss": loss} for right, loss in zip(correct, losses)]
    return scores[0], scores[1:]


def error_rates(correct, examples=None):
    """Error rate of each row of a per-example correctness array (last axis: examples),
    optionally on the examples ``examples`` (indices, repeats allowed: a bootstrap resample).

    Example:
        >>> error_rates(np.array([[True, False], [True, True]])).tolist()
        [0.5, 0.0]
    """
    correct = np.asarray(correct, dtype=bool)
    if examples is not None:
        correct = correct[..., examples]
    return 1.0 - correct.mean(axis=-1)


def spearman(a, b):
    """Spearman's rank correlation of ``a`` and ``b`` (average ranks for ties); NaN when
    either is constant or there are fewer than two values.

    Example:
        >>> spearman([1, 2, 3, 4], [10, 20, 20, 40])
        0.9486832980505138
    """
    from scipy.stats import rankdata

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) != len(b):
        raise ValueError(f"`a` and `b` must have the same length, got {len(a)} and {len(b)}.")
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    ra, rb = rankdata(a) - (len(a) + 1) / 2, rankdata(b) - (len(b) + 1) / 2
    return float((ra * rb).sum() / np.sqrt((ra * ra).sum() * (rb * rb).sum()))


def percentile_bars(statistic, n, resamples=200, seed=0, level=0.95):
    """Per-point 95% percentile-bootstrap intervals for a figure: ``statistic(indices)`` returns
    an array (one value per plotted point) on a resample of ``range(n)``; returns ``(low, high)``
    arrays. Figures only: the findings' intervals come from
    :func:`keras_resnet_lab.findings.bootstrap`."""
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)], float)
    low, high = np.nanquantile(values, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return low, high


def error_bars(value, low, high):
    """``yerr`` for matplotlib's ``errorbar`` from a value and its interval (never negative)."""
    value, low, high = (np.asarray(v, dtype=float) for v in (value, low, high))
    return np.vstack([np.maximum(value - low, 0.0), np.maximum(high - value, 0.0)])
