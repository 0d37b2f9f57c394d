"""What every analysis result shares: JSON serialization, atomic files and PNG figures.

Results are plain dataclasses on :class:`~keras_resnet_lab.atomic.Result` (as the
visualizations' are): ``to_dict()`` (JSON-safe: numpy numbers become Python numbers, NaN/inf
become None), ``to_json(path)`` and ``plot(path)`` through ``draw(axes)``. The shared parts live
in :mod:`keras_resnet_lab.atomic` (every file written atomically, figures drawn on matplotlib's
Agg canvas without touching the global pyplot backend); the analyses import them from here.
"""

from keras_resnet_lab.atomic import (  # noqa: F401  (the analyses' names for them)
    Result,
    array_field,
    atomic_write_json,
    atomic_write_text,
    jsonable,
    new_figure,
    save_figure,
)


def fmt_number(value):
    """``value`` with 3 significant digits, or ``n/a`` for None (a NaN made JSON-safe)."""
    return "n/a" if value is None else f"{value:.3g}"


def fmt_percent(value):
    """A fraction as a percentage with one decimal, or ``n/a`` for None."""
    return "n/a" if value is None else f"{100 * value:.1f}%"
