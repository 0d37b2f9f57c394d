"""Filters across a stage boundary: which channel of the next stage continues which channel of
this one.

Inside a stage, channel ``j`` of one block continues channel ``j`` of the previous block (the
refinement view). At a stage boundary the first block changes resolution and width, so filter
indices need not correspond. :func:`match_filters` pairs the channels of the last block of stage
``s`` with those of the first block of stage ``s + 1`` by the correlation of their activations
on a data sample (the larger map average-pooled to the smaller one's resolution), with an
optimal (Hungarian) or greedy one-to-one matching, and shows the best pairs maximized side by
side (the future work of Chu et al., arXiv 1701.02362).
"""

import dataclasses

import numpy as np

from keras_resnet_lab.models.chain import stages
from keras_resnet_lab.vis import _tkv
from keras_resnet_lab.vis._checks import (
    as_images,
    boolean,
    check_finite_model,
    integer,
    is_int,
    one_of,
    positive_int,
)
from keras_resnet_lab.vis.maximization import maximize_filter
from keras_resnet_lab.vis.plotting import VisResult

__all__ = ["MATCHINGS", "FilterMatches", "activation_correlation", "match_filters"]

#: One-to-one matchings :func:`match_filters` can use.
MATCHINGS = ("hungarian", "greedy")


def _pool_to(a, height, width):
    """Resize activations ``(N, H, W, C)`` to ``(N, height, width, C)`` (area averaging)."""
    if a.shape[1:3] == (height, width):
        return a
    if a.shape[1] % height == 0 and a.shape[2] % width == 0:
        fh, fw = a.shape[1] // height, a.shape[2] // width
        return a.reshape(a.shape[0], height, fh, width, fw, a.shape[3]).mean(axis=(2, 4))
    import tensorflow as tf

    return np.asarray(tf.image.resize(a, (height, width), method="area"))


def activation_correlation(first, second):
    """Pearson correlation matrix ``(C1, C2)`` between the channels of two activation arrays.

    Args:
        first: ``(N, H1, W1, C1)``.
        second: ``(N, H2, W2, C2)``; the larger of the two maps is average-pooled to the
            smaller one's resolution, then every (image, position) is one observation.

    Constant channels (e.g. dead ReLUs) correlate 0 with everything.

    Example:
        >>> corr = activation_correlation(first_block_maps, next_block_maps)  # (C1, C2)

    Paper: future work of Chu et al., arXiv 1701.02362.
    """
    first = np.asarray(first, np.float64)
    second = np.asarray(second, np.float64)
    height = min(first.shape[1], second.shape[1])
    width = min(first.shape[2], second.shape[2])
    a = _pool_to(first, height, width).reshape(-1, first.shape[-1])
    b = _pool_to(second, height, width).reshape(-1, second.shape[-1])
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    na = np.sqrt((a * a).sum(axis=0))
    nb = np.sqrt((b * b).sum(axis=0))
    denominator = np.outer(na, nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (a.T @ b) / denominator
    return np.where(denominator > 0, corr, 0.0)


def _match(corr, matching):
    """One-to-one pairs ``[(i, j), ...]`` maximizing the total correlation."""
    if matching == "hungarian":
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(-corr)
        return list(zip(rows.tolist(), cols.tolist()))
    pairs, used_rows, used_cols = [], set(), set()
    for flat in np.argsort(-corr, axis=None):
        i, j = np.unravel_index(flat, corr.shape)
        if i not in used_rows and j not in used_cols:
            pairs.append((int(i), int(j)))
            used_rows.add(i)
            used_cols.add(j)
            if len(pairs) == min(corr.shape):
                break
    return pairs


@dataclasses.dataclass
class FilterMatches(VisResult):
    """Channels of the last block of a stage matched to those of the next stage's first block.

    Attributes:
        model_name: the model.
        stage: ``s``; the blocks are :attr:`source` (last of ``s``) and :attr:`target`
            (first of ``s + 1``).
        source, target: the two block names.
        matching: ``"hungarian"`` or ``"greedy"``.
        correlation: ``(C1, C2)`` activation correlations on the sample.
        pairs: matched ``(source channel, target channel)``, best correlation first.
        pair_correlation: the correlation of each pair.
        identity_fraction: share of pairs ``(i, i)``: with an identity / zero-padding shortcut
            (option A) a channel tends to continue under its own index.
        baseline_correlation: mean correlation of all channel pairs (the chance level).
        shown: the pairs maximized in the figure.
        source_images, target_images: ``(len(shown), H, W, C)`` maximizing inputs (or None).
        samples: number of images the correlations were measured on.
    """

    model_name: str
    stage: int
    source: str
    target: str
    matching: str
    correlation: np.ndarray
    pairs: list
    pair_correlation: list
    identity_fraction: float
    baseline_correlation: float
    shown: list
    source_images: object
    target_images: object
    samples: int

    def to_dict(self, include_arrays=False):
        """The result as JSON-ready data (the matrix and images only with ``include_arrays``)."""
        data = {"model": self.model_name, "stage": self.stage, "source": self.source,
                "target": self.target, "matching": self.matching, "samples": self.samples,
                "method": "activation correlation matching + activation maximization",
                "pairs": [[int(i), int(j)] for i, j in self.pairs],
                "pair_correlation": [float(c) for c in self.pair_correlation],
                "mean_pair_correlation": float(np.mean(self.pair_correlation)),
                "identity_fraction": float(self.identity_fraction),
                "baseline_correlation": float(self.baseline_correlation),
                "shown": [[int(i), int(j)] for i, j in self.shown]}
        if include_arrays:
            data["correlation"] = np.round(self.correlation, 6).tolist()
            if self.source_images is not None:
                data["source_images"] = np.round(self.source_images, 6).tolist()
                data["target_images"] = np.round(self.target_images, 6).tolist()
        return data

    def figure(self):
        """The correlation matrix with the matching, and the best pairs maximized (top row:
        source block, bottom row: target block); ``plot(path)`` writes it as PNG."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from keras_resnet_lab.vis.plotting import display_image

        k = len(self.shown) if self.source_images is not None else 0
        figure = plt.figure(figsize=(3.6 + 1.5 * k, 3.9), layout="constrained")
        grid = figure.add_gridspec(2, 1 + max(k, 1), width_ratios=[2.4] + [1] * max(k, 1))
        ax = figure.add_subplot(grid[:, 0])
        shown = ax.imshow(self.correlation, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto",
                          interpolation="nearest")
        rows, cols = zip(*self.pairs) if self.pairs else ((), ())
        ax.scatter(cols, rows, s=10, facecolors="none", edgecolors="k", linewidths=0.8)
        ax.set_xlabel(f"{self.target} channel", fontsize=8)
        ax.set_ylabel(f"{self.source} channel", fontsize=8)
        ax.set_title(f"correlation, {self.matching} matching (o)\nmatched pairs "
                     f"{np.mean(self.pair_correlation):.2f}, all pairs "
                     f"{self.baseline_correlation:.2f}", fontsize=8)
        ax.tick_params(labelsize=7)
        figure.colorbar(shown, ax=ax, fraction=0.05, pad=0.02).ax.tick_params(labelsize=7)
        lookup = dict(zip(self.pairs, self.pair_correlation))
        for c in range(k):
            i, j = self.shown[c]
            for r, (images, name, index) in enumerate(((self.source_images, self.source, i),
                                                       (self.target_images, self.target, j))):
                panel = figure.add_subplot(grid[r, 1 + c])
                image = display_image(images[c])
                panel.imshow(image, cmap="gray" if image.ndim == 2 else None,
                             interpolation="nearest")
                panel.set_xticks([])
                panel.set_yticks([])
                title = f"{name} ch {index}"
                if r == 0:
                    title = f"r = {lookup[(i, j)]:.2f}\n" + title
                panel.set_title(title, fontsize=7)
        title = (f"Cross-stage filter matching of model '{self.model_name}': "
                 f"{self.source} -> {self.target}")
        figure.suptitle(title, fontsize=10)
        return figure


def match_filters(model, stage=1, images=None, matching="hungarian", top_k=6,
                  maximize=True, batch_size=64, path=None, **kwargs):
    """Match the channels of the last block of ``stage`` to the first block of ``stage + 1``.

    Args:
        model: a model built by this library (image input).
        stage: the stage ``s`` (1-based), not the last one.
        images: the data sample ``(N, H, W, C)`` of the model's input shape (default: 256
            embedded digits at the model's input size).
        matching: ``"hungarian"`` (maximal total correlation, scipy's
            ``linear_sum_assignment``) or ``"greedy"`` (best remaining pair first).
        top_k: number of best pairs maximized and shown (0 shows only the matrix).
        maximize: whether to run activation maximization for the shown pairs.
        batch_size: of the forward passes.
        path: if given, a PNG is written there.
        **kwargs: passed to :func:`~keras_resnet_lab.vis.maximize_filter`.

    Returns:
        :class:`FilterMatches`.

    Raises:
        ValueError: unknown stage or the last stage (says the valid ones), bad images.

    Example:
        >>> matches = match_filters(model, stage=1, top_k=4, steps=64, path="matches.png")
        >>> matches.pairs[:2]
        [(3, 3), (0, 0)]

    Paper: Chu, Yang, Tadinada, arXiv 1701.02362 (future work).
    """
    import keras

    one_of("matching", matching, MATCHINGS)
    batch_size = positive_int("batch_size", batch_size)
    top_k = integer("top_k", top_k, 0)
    maximize = boolean("maximize", maximize)
    grouped = stages(model)
    valid = sorted(grouped)[:-1]
    if not is_int(stage) or stage not in valid:
        raise ValueError(f"`stage` must be one of {valid} (a stage of '{model.name}' followed "
                         f"by another), got {stage!r}.")
    source, target = grouped[stage][-1], grouped[stage + 1][0]
    if len(source.layer.output.shape) != 4 or len(target.layer.output.shape) != 4:
        raise ValueError("filter matching needs blocks with spatial outputs; "
                         f"'{source.name}' outputs {tuple(source.layer.output.shape)}.")
    if images is None:
        from keras_resnet_lab.vis.images import digits_for_model

        images, _, value_range = digits_for_model(model, 256)
        kwargs.setdefault("input_range", value_range)
    x = as_images(model, images)
    check_finite_model(model, x)
    stage = int(stage)
    features = keras.Model([_tkv.single_input(model)],
                           [source.layer.output, target.layer.output])
    parts = [features([x[i:i + batch_size]], training=False)
             for i in range(0, len(x), batch_size)]
    first = np.concatenate([np.asarray(a) for a, _ in parts])
    second = np.concatenate([np.asarray(b) for _, b in parts])
    corr = activation_correlation(first, second)
    pairs = sorted(_match(corr, matching), key=lambda p: -corr[p])
    pair_corr = [float(corr[p]) for p in pairs]
    identity = float(np.mean([i == j for i, j in pairs])) if pairs else 0.0
    shown = pairs[:top_k]
    source_images = target_images = None
    if maximize and shown:
        source_images = maximize_filter(model, source.name, [i for i, _ in shown],
                                        **kwargs).images
        target_images = maximize_filter(model, target.name, [j for _, j in shown],
                                        **kwargs).images
    result = FilterMatches(model.name, stage, source.name, target.name, matching, corr, pairs,
                           pair_corr, identity, float(corr.mean()), shown, source_images,
                           target_images, int(len(x)))
    if path is not None:
        result.plot(path)
    return result
