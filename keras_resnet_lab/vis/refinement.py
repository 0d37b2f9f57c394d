"""The refinement view (Chu et al., "Visualizing Residual Networks", arXiv 1701.02362): the same
filter index maximized at every successive block of one stage, side by side.

In a residual stage the blocks compute ``h_{b+1} = h_b + F_b(h_b)``: channel ``j`` of block
``b+1`` is channel ``j`` of block ``b`` plus a correction, so the images that maximize it should
change little from block to block (the block *refines* the feature); in the plain twin nothing
ties channel ``j`` of one block to channel ``j`` of the next. :class:`RefinementView` measures it:
the correlation between the images of consecutive blocks, for the same filter and (as a control)
for different filters.
"""

import dataclasses

import numpy as np

from keras_resnet_lab.atomic import save_figure
from keras_resnet_lab.models.chain import stages
from keras_resnet_lab.vis._checks import check_indices, is_int
from keras_resnet_lab.vis.maximization import maximize_filter
from keras_resnet_lab.vis.plotting import VisResult, image_grid

__all__ = ["RefinementView", "image_correlation", "refinement_view"]


def image_correlation(a, b):
    """Pearson correlation of two images (0 when one of them is constant).

    Args:
        a, b: arrays of the same size (flattened).

    Example:
        >>> image_correlation(view.images[0, 0], view.images[0, 1])

    Paper: the similarity the refinement view shows by eye (Chu et al., arXiv 1701.02362).
    """
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


@dataclasses.dataclass
class RefinementView(VisResult):
    """Filters maximized at every block of one stage.

    Attributes:
        model_name: the model.
        stage: the stage (1-based).
        blocks: the stage's block names, in order (one panel column each).
        filter_indices: the filters (one row each).
        images: ``(filters, blocks, H, W, C)`` optimized inputs.
        activation: ``(filters, blocks)`` activation of the filter on its image.
        blank_activation: ``(filters, blocks)`` activation on a blank image.
        same_filter_similarity: per filter, the mean correlation between the images of
            consecutive blocks.
        other_filter_similarity: the mean correlation between the image of one filter at a
            block and of *another* filter at the next block (the control; None with a single
            filter).
        steps, seed: of the optimization.
    """

    model_name: str
    stage: int
    blocks: list
    filter_indices: list
    images: np.ndarray
    activation: np.ndarray
    blank_activation: np.ndarray
    same_filter_similarity: list
    other_filter_similarity: object
    steps: int
    seed: object

    @property
    def mean_same_filter_similarity(self):
        """Mean over filters of :attr:`same_filter_similarity`."""
        return float(np.mean(self.same_filter_similarity))

    def to_dict(self, include_arrays=False):
        """The result as JSON-ready data (images only with ``include_arrays``)."""
        data = {"model": self.model_name, "stage": self.stage, "blocks": list(self.blocks),
                "method": "activation maximization (refinement view)",
                "filter_indices": [int(f) for f in self.filter_indices],
                "activation": np.asarray(self.activation, float).round(6).tolist(),
                "blank_activation": np.asarray(self.blank_activation, float).round(6).tolist(),
                "same_filter_similarity": [float(s) for s in self.same_filter_similarity],
                "mean_same_filter_similarity": self.mean_same_filter_similarity,
                "other_filter_similarity": (None if self.other_filter_similarity is None
                                            else float(self.other_filter_similarity)),
                "steps": self.steps, "seed": self.seed}
        if include_arrays:
            data["images"] = np.round(self.images, 6).tolist()
        return data

    def title(self):
        """The figure title."""
        control = ("" if self.other_filter_similarity is None else
                   f", other filters {self.other_filter_similarity:.2f}")
        return (f"Refinement view of model '{self.model_name}', stage {self.stage}: each filter "
                f"maximized at every block (activation maximization)\nimage correlation between "
                f"consecutive blocks over {len(self.filter_indices)} filters: same filter "
                f"{self.mean_same_filter_similarity:.2f}{control}")

    def panels(self, heading="", rows=None):
        """``(panels, titles, row labels)`` of the grid: rows are filters (the first ``rows``
        of them, default all), columns blocks."""
        panels, titles, labels = [], [], []
        for r, f in enumerate(self.filter_indices[:rows]):
            panels.append(list(self.images[r]))
            titles.append([(f"{heading}{name}\n" if r == 0 else "")
                           + f"act {self.activation[r][c]:.2f}"
                           for c, name in enumerate(self.blocks)])
            labels.append(f"filter {f}")
        return panels, titles, labels

    def figure(self, rows=None):
        """The grid (rows: filters, the first ``rows`` of them; one panel per block of the
        stage); ``plot(path, rows=None)`` writes it as PNG. The title's similarities are over
        all filters."""
        panels, titles, labels = self.panels(rows=rows)
        return image_grid(panels, titles, self.title(), labels)


def plot_refinement_comparison(views, path, names=None, rows=None):
    """Several refinement views side by side in one PNG (e.g. a ResNet and its plain twin).

    Args:
        views: :class:`RefinementView` results with the same filters.
        path: the PNG to write.
        names: one short name per view for the column headings (default: the model names).
        rows: show only the first ``rows`` filters (the similarities are over all of them).

    Returns:
        ``path``.

    Example:
        >>> plot_refinement_comparison([view, plain_view], "refinement.png",
        ...                            names=["residual", "plain"])

    Paper: Chu, Yang, Tadinada, arXiv 1701.02362.
    """
    views = list(views)
    if not views or any(v.filter_indices != views[0].filter_indices for v in views):
        raise ValueError("`views` must be one or more RefinementView results with the same "
                         "filter indices.")
    names = list(names) if names is not None else [v.model_name for v in views]
    if len(names) != len(views):
        raise ValueError(f"`names` must have one name per view ({len(views)}), got "
                         f"{len(names)}.")
    panels, titles, labels, summary, spacers = None, None, None, [], []
    for view, name in zip(views, names):
        p, t, labels = view.panels(heading=f"{name}: ", rows=rows)
        if panels is None:
            panels, titles = p, t
        else:
            spacers.append(len(panels[0]))
            panels = [a + [None] + b for a, b in zip(panels, p)]
            titles = [a + [""] + b for a, b in zip(titles, t)]
        control = ("" if view.other_filter_similarity is None
                   else f" (other filters {view.other_filter_similarity:.2f})")
        summary.append(f"{name} {view.mean_same_filter_similarity:.2f}{control}")
    count = len(views[0].filter_indices)
    title = (f"Refinement view, stage {views[0].stage}: each filter maximized at every block "
             f"(activation maximization)\nimage correlation of the same filter at consecutive "
             f"blocks, mean over {count} filters:\n" + ";  ".join(summary))
    return save_figure(image_grid(panels, titles, title, labels, spacers=spacers), path,
                       **VisResult.savefig_options)


def _similarities(images):
    """(per-filter mean same-filter correlation, mean other-filter correlation or None)."""
    n_filters, n_blocks = images.shape[:2]
    same, other = [], []
    for r in range(n_filters):
        pairs = [image_correlation(images[r, b], images[r, b + 1]) for b in range(n_blocks - 1)]
        same.append(float(np.mean(pairs)) if pairs else 1.0)
        for q in range(n_filters):
            if q != r:
                other.extend(image_correlation(images[r, b], images[q, b + 1])
                             for b in range(n_blocks - 1))
    return same, (float(np.mean(other)) if other else None)


def refinement_view(model, stage=None, filter_index=None, path=None, **kwargs):
    """The same filters maximized at every block of one stage (one panel per block).

    Every block's images start from the same seeded image and see the same random jitter, so
    differences between panels come from the blocks alone.

    Args:
        model: a model built by this library (image input), residual or plain.
        stage: the stage (1-based; default: the last stage).
        filter_index: a filter index or a list of them (default: the first four).
        path: if given, a PNG grid is written there.
        **kwargs: passed to :func:`~keras_resnet_lab.vis.maximize_filter` (``steps``,
            ``seed``, ``input_range``, ``jitter``, ...).

    Returns:
        :class:`RefinementView`.

    Raises:
        ValueError: unknown stage (says the valid ones), filter index out of range.

    Example:
        >>> view = refinement_view(model, stage=2, filter_index=[0, 1, 2], steps=64,
        ...                        path="refinement.png")
        >>> view.mean_same_filter_similarity > view.other_filter_similarity
        True

    Paper: Chu, Yang, Tadinada, arXiv 1701.02362.
    """
    grouped = stages(model)
    if stage is None:
        stage = max(grouped)
    if not is_int(stage) or stage not in grouped:
        raise ValueError(f"`stage` must be one of {sorted(grouped)} (the stages of "
                         f"'{model.name}'), got {stage!r}.")
    stage = int(stage)
    infos = grouped[stage]
    channels = int(infos[-1].layer.output.shape[-1])
    if filter_index is None:
        filter_index = list(range(min(4, channels)))
    filters = check_indices("filter_index", filter_index, channels,
                            f"the blocks of stage {stage} have {channels} channels")
    results = [maximize_filter(model, info.name, filters, **kwargs) for info in infos]
    images = np.stack([r.images for r in results], axis=1)
    same, other = _similarities(images)
    view = RefinementView(
        model.name, stage, [info.name for info in infos], filters, images,
        np.array([r.activation for r in results]).T, np.array([r.blank_activation
                                                                 for r in results]).T,
        same, other, results[0].steps, results[0].seed)
    if path is not None:
        view.plot(path)
    return view

