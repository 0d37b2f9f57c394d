"""PNG grids for the visualizations (matplotlib, Agg backend).

Every figure is a grid of small image panels with a title per panel and a title over the
grid naming the model, the block, the class or filter and the method. The results write them
with :meth:`keras_resnet_lab.atomic.Result.plot` (atomically, cut to their content).
"""

import textwrap

import numpy as np

from keras_resnet_lab.atomic import Result

__all__ = ["VisResult", "display_image", "image_grid", "wrap_title"]


class VisResult(Result):
    """The :class:`~keras_resnet_lab.atomic.Result` of a visualization: ``to_dict(
    include_arrays=False)`` (the images and maps only when asked), ``to_json(path,
    include_arrays=False)`` and ``plot(path, ...)`` of its ``figure(...)``, an image grid cut
    to its content."""

    savefig_options = {"bbox_inches": "tight"}


def display_image(image):
    """An image (H, W, C) scaled to [0, 1] for display: RGB for 3 channels, grey otherwise.

    Vectors (a dense model's input) are shown as a one-row strip.

    Example:
        >>> display_image(np.zeros((8, 8, 3))).shape
        (8, 8, 3)
    """
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim == 3:
        x = x if x.shape[-1] == 3 else x.mean(axis=-1)
    low, high = float(np.min(x)), float(np.max(x))
    return (x - low) / (high - low) if high > low else np.zeros_like(x)


def _figure(rows, columns, panel_size, spacers=()):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    widths = [0.25 if c in spacers else 1.0 for c in range(columns)]
    figure, axes = plt.subplots(rows, columns, squeeze=False, layout="constrained",
                                gridspec_kw={"width_ratios": widths},
                                figsize=(panel_size * sum(widths) + 0.4,
                                         panel_size * rows + 0.6))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return figure, axes


def image_grid(panels, titles=None, title=None, row_labels=None, overlays=None,
               overlay_alpha=0.55, panel_size=1.7, spacers=()):
    """A figure showing ``panels`` (a rows x columns nested list of images or None).

    Args:
        panels: nested list ``[row][column]`` of images (H, W[, C]); None leaves a blank panel.
        titles: the same nesting of panel titles (or None).
        title: the figure's title.
        row_labels: one label per row, written left of the row.
        overlays: the same nesting of heat maps (H, W) drawn over the panel (or None).
        overlay_alpha: opacity of the heat maps.
        panel_size: inches per panel.
        spacers: indices of columns that only separate groups (drawn narrow and empty).

    Returns:
        The matplotlib figure (save it with :func:`keras_resnet_lab.atomic.save_figure`).

    Example:
        >>> figure = image_grid([[a, b], [c, None]], [["a", "b"], ["c", ""]], "title")
    """
    rows = len(panels)
    columns = max(len(row) for row in panels)
    figure, axes = _figure(rows, columns, panel_size, tuple(spacers))
    for r in range(rows):
        for c in range(columns):
            ax = axes[r][c]
            image = panels[r][c] if c < len(panels[r]) else None
            if image is None:
                ax.axis("off")
                continue
            shown = display_image(image)
            ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, interpolation="nearest",
                      aspect="auto" if np.ndim(image) == 1 else "equal")
            heat = overlays[r][c] if overlays is not None and c < len(overlays[r]) else None
            if heat is not None:
                ax.imshow(np.asarray(heat), cmap="jet", alpha=overlay_alpha, vmin=0.0, vmax=1.0,
                          interpolation="bilinear")
            if titles is not None and c < len(titles[r]) and titles[r][c]:
                ax.set_title(titles[r][c], fontsize=8)
        if row_labels is not None and row_labels[r]:
            axes[r][0].set_ylabel(row_labels[r], fontsize=8)
    if title:
        title = wrap_title(title, (columns - 0.75 * len(spacers)) * panel_size)
        figure.suptitle(title, fontsize=10)
    return figure


def wrap_title(title, width_inches):
    """``title`` with each line wrapped to fit ``width_inches`` at font size 10."""
    width = max(30, int(width_inches * 12))
    return "\n".join(textwrap.fill(line, width) for line in str(title).splitlines())
