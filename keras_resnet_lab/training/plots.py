"""Training curves: loss and accuracy per epoch, train and validation, as a PNG.

Uses matplotlib's object API with the Agg canvas directly (no ``pyplot``, no global backend
switch), so it works headless and never disturbs the caller's matplotlib state.
"""

from __future__ import annotations

import math
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from keras_resnet_lab.atomic import save_figure
from keras_resnet_lab.training.callbacks import history_columns

__all__ = ["ACCURACY_KEYS", "plot_history"]

ACCURACY_KEYS = (
    "accuracy",
    "acc",
    "sparse_categorical_accuracy",
    "categorical_accuracy",
    "binary_accuracy",
)


def _columns(history):
    """Normalize the accepted history forms to ``{key: [values]}``."""
    if hasattr(history, "history") and isinstance(history.history, dict):  # keras History
        history = history.history
    if isinstance(history, dict) and isinstance(history.get("epochs"), list):  # history.json
        history = history["epochs"]
    if isinstance(history, (list, tuple)):
        if not all(isinstance(r, dict) for r in history):
            raise ValueError(
                "history given as a list must hold one dict per epoch (JsonHistory records)"
            )
        history = history_columns(history)
    if not isinstance(history, dict):
        raise ValueError(
            "history must be a dict of per-epoch lists, a list of per-epoch dicts, a "
            f"keras History or a loaded history.json, got history={type(history).__name__}"
        )
    return history


def _as_array(values):
    return np.array([math.nan if v is None else v for v in values], dtype="float64")


def plot_history(history, path, title=None):
    """Plot loss and accuracy per epoch (train and validation) into a PNG, atomically.

    Left panel: ``loss`` and ``val_loss``. Right panel: the first accuracy key found
    (``accuracy``, ``acc``, ``sparse_categorical_accuracy``, ...) and its ``val_`` twin; the
    panel says so when no accuracy was logged. The x axis is the ``epoch`` column when present
    (1-based), else 1..n.

    Args:
        history: ``{key: [value per epoch]}`` (``keras.callbacks.History.history``), a
            ``History`` object, a list of per-epoch records (``JsonHistory.records``) or a
            loaded ``history.json`` dict.
        path: the ``.png`` file to write (folder created if missing).
        title: figure title (default ``"Training history"``).

    Returns:
        ``path``.

    Example:
        >>> plot_history({"loss": [1.0, 0.5], "accuracy": [0.5, 0.8]}, "out/curves.png")
        ... # doctest: +SKIP
    """
    path = os.fspath(path)
    if not path.lower().endswith(".png"):
        raise ValueError(f"path must end in '.png', got path={path!r}")
    columns = _columns(history)
    lengths = {len(v) for k, v in columns.items() if isinstance(v, (list, tuple, np.ndarray))}
    n = max(lengths) if lengths else 0
    if "epoch" in columns:
        epochs = _as_array(columns["epoch"])
    else:
        epochs = np.arange(1, n + 1, dtype="float64")

    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)
    acc_key = next((k for k in ACCURACY_KEYS if k in columns), None)
    panels = ((ax_loss, "loss", "loss"), (ax_acc, acc_key, "accuracy"))
    for ax, key, label in panels:
        plotted = False
        for name, style in ((key, "-o"), (f"val_{key}" if key else None, "--s")):
            if name is None or name not in columns:
                continue
            values = _as_array(columns[name])
            if values.size:
                ax.plot(epochs[: values.size], values, style, markersize=3, label=name)
                plotted = True
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
        if plotted:
            ax.legend()
        else:
            ax.text(
                0.5, 0.5, f"no {label} logged", ha="center", va="center", transform=ax.transAxes
            )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if np.isfinite(epochs).any():
            ax.set_xlim(np.nanmin(epochs) - 0.5, np.nanmax(epochs) + 0.5)
    fig.suptitle(title or "Training history")
    fig.tight_layout()
    save_figure(fig, path, dpi=None)  # None: the figure's own 100 dpi
    return path
