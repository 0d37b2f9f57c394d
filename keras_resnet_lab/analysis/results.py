"""What every analysis result shares: JSON serialization, atomic files and PNG figures.

Results are plain dataclasses; :class:`Result` gives them ``to_dict()`` (JSON-safe: numpy
numbers become Python numbers, NaN/inf become None), ``to_json(path)`` and ``plot(path)``.
Every file is written atomically (a temporary file in the same folder, then ``os.replace``), and
figures are drawn with matplotlib's Agg canvas without touching the global pyplot backend.
"""

import dataclasses
import json
import math

import numpy as np

from keras_resnet_lab.atomic import atomic_write_text, save_figure  # noqa: F401


def jsonable(value):
    """``value`` with numpy arrays/numbers turned into lists/numbers and NaN/inf into None.

    Example:
        >>> jsonable({"a": np.float32(0.5), "b": np.array([1, np.nan])})
        {'a': 0.5, 'b': [1.0, None]}
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def atomic_write_json(obj, path):
    """Write ``obj`` (made :func:`jsonable`) as strict JSON to ``path`` atomically.

    Example:
        >>> atomic_write_json({"n_blocks": 27}, "out/results.json")  # doctest: +SKIP
    """
    return atomic_write_text(json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n", path)


def array_field():
    """A dataclass field for per-example (or per-draw) arrays: kept on the result for
    bootstrap intervals, left out of its JSON and its repr."""
    return dataclasses.field(default=None, repr=False, compare=False,
                             metadata={"in_json": False})


def new_figure(ncols=1, nrows=1, width=5.0, height=4.0):
    """A matplotlib Figure on an Agg canvas and its axes (a flat list)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, squeeze=False)
    return figure, [ax for row in axes for ax in row]


class Result:
    """Mixin of the analysis results: ``to_dict``, ``to_json(path)`` and ``plot(path)``.

    Subclasses are dataclasses and implement ``draw(axes)`` on the axes list made by
    ``new_figure(self.figure_columns)``.
    """

    figure_columns = 1

    def to_dict(self):
        """The result as a JSON-safe dict (without the fields marked ``in_json=False``:
        per-example arrays kept for intervals, see :func:`array_field`)."""
        return jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                         if f.metadata.get("in_json", True)})

    def to_json(self, path):
        """Write the result to ``path`` as JSON (atomically); returns ``path``."""
        return atomic_write_json(self.to_dict(), path)

    def plot(self, path):
        """Draw the result's figure into ``path`` (PNG); returns ``path``."""
        figure, axes = new_figure(self.figure_columns)
        self.draw(axes)
        return save_figure(figure, path)


def fmt_number(value):
    """``value`` with 3 significant digits, or ``n/a`` for None (a NaN made JSON-safe)."""
    return "n/a" if value is None else f"{value:.3g}"


def fmt_percent(value):
    """A fraction as a percentage with one decimal, or ``n/a`` for None."""
    return "n/a" if value is None else f"{100 * value:.1f}%"
