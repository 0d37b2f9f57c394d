"""Atomic file writes: write to a temporary file in the same folder, then ``os.replace``.

A reader (or a run killed half-way) never sees a half-written ``history.json``, ``model.keras``
or ``curves.png``: the final name points either at the previous complete file or at the new
complete file. ``os.replace`` is atomic when source and target are on the same file system,
which is why the temporary file lives in the target's own folder.

Every JSON file and figure of the package is written here: :func:`atomic_write_json` (values
made :func:`jsonable` first), :func:`save_figure`, and :class:`Result`, the mixin of every
result (analyses, visualizations) that writes itself as JSON and as a figure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import uuid

import numpy as np

__all__ = ["Result", "array_field", "atomic_path", "atomic_write_json", "atomic_write_text",
           "jsonable", "new_figure", "save_figure", "save_model_atomic"]


def _fsync_file(path):
    """Flush ``path``'s data to disk (best effort; some file systems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success move it onto ``path`` atomically.

    The temporary name keeps ``path``'s extension (``.model-1a2b3c4d.tmp.keras`` for
    ``model.keras``), because some writers (Keras ``model.save``) insist on it. If the body
    raises, the temporary file is removed and ``path`` is left untouched.

    Args:
        path: the final file path. Its folder is created if missing.

    Example:
        >>> with atomic_path("out/curves.png") as tmp:  # doctest: +SKIP
        ...     figure.savefig(tmp)
    """
    path = os.fspath(path)
    if not path or path.endswith(os.sep) or os.path.isdir(path):
        raise ValueError(f"`path` must name a file, got {path!r}.")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(path))
    tmp = os.path.join(folder, f".{stem}-{uuid.uuid4().hex[:8]}.tmp{ext}")
    try:
        yield tmp
        if not os.path.exists(tmp):
            raise FileNotFoundError(f"nothing was written to the temporary file {tmp!r}")
        _fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(text, path):
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``.

    Example:
        >>> atomic_write_text("hello", "out/note.txt")  # doctest: +SKIP
    """
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    return os.fspath(path)


def save_figure(figure, path, dpi=110, **savefig_kwargs):
    """Save a matplotlib ``figure`` to ``path`` atomically (format from the extension, PNG
    without one); returns ``path``. A pyplot figure is closed afterwards (pyplot would keep it
    alive); a figure on its own Agg canvas (:func:`new_figure`) needs no closing.

    Args:
        figure: a matplotlib figure.
        path: the file; written to a temporary file in the same folder, then renamed.
        dpi: resolution.
        **savefig_kwargs: passed to ``figure.savefig`` (``bbox_inches="tight"`` ...).

    Example:
        >>> save_figure(figure, "out/curves.png")  # doctest: +SKIP
    """
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".") or "png"
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=fmt, dpi=dpi, **savefig_kwargs)
    finally:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close(figure)
    return os.fspath(path)


def new_figure(ncols=1, nrows=1, width=5.0, height=4.0):
    """A matplotlib Figure on its own Agg canvas (the global pyplot backend untouched) and its
    axes (a flat list)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, squeeze=False)
    return figure, [ax for row in axes for ax in row]


def jsonable(value, allow_nan=False):
    """``value`` with numpy arrays/numbers turned into lists/numbers, tuples into lists,
    dataclasses into dicts (their ``to_dict()`` where they have one) and NaN/inf into None
    (kept with ``allow_nan``).

    Example:
        >>> jsonable({"a": np.float32(0.5), "b": np.array([1, np.nan])})
        {'a': 0.5, 'b': [1.0, None]}
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, allow_nan) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, allow_nan) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), allow_nan)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if allow_nan or math.isfinite(value) else None
    return value


def atomic_write_json(obj, path, indent=2, *, allow_nan=False):
    """Write ``obj`` as JSON to ``path`` atomically (temporary file + ``os.replace``); returns
    ``path``.

    Args:
        obj: made :func:`jsonable` first (numpy values, tuples, dataclasses).
        path: the target ``.json`` path.
        indent: JSON indentation.
        allow_nan: write NaN and infinities as ``NaN``/``Infinity`` (Python's JSON, which
            strict readers refuse); by default they become ``null`` (strict JSON).

    Example:
        >>> atomic_write_json({"epochs": []}, "out/history.json")  # doctest: +SKIP
    """
    text = json.dumps(jsonable(obj, allow_nan), indent=indent, allow_nan=allow_nan)
    return atomic_write_text(text + "\n", path)


def save_model_atomic(model, path):
    """Save a Keras model to a ``.keras`` file atomically.

    Args:
        model: a ``keras.Model``.
        path: the target path; must end in ``.keras``.

    Example:
        >>> save_model_atomic(model, "out/model.keras")  # doctest: +SKIP
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"path must end in '.keras' (Keras v3 format), got path={path!r}")
    with atomic_path(path) as tmp:
        model.save(tmp, overwrite=True)
    return path


def array_field():
    """A dataclass field for per-example (or per-draw) arrays: kept on the result (for
    bootstrap intervals), left out of its JSON (:meth:`Result.to_dict`) and its repr."""
    return dataclasses.field(default=None, repr=False, compare=False,
                             metadata={"in_json": False})


class Result:
    """Mixin of every result (analyses, visualizations): ``to_dict()``, ``to_json(path)`` and
    ``plot(path)``, every file written atomically.

    Subclasses are dataclasses. ``to_dict()`` gives their fields made :func:`jsonable`
    (without the :func:`array_field` ones); ``plot`` saves :meth:`figure`, by default the axes
    of ``new_figure(self.figure_columns)`` drawn by the subclass's ``draw(axes)``. A subclass
    may instead override ``to_dict(**options)`` and ``figure(**options)``: ``to_json(path,
    **options)`` and ``plot(path, **options)`` pass the options on, and ``plot`` saves with
    :attr:`savefig_options`.
    """

    figure_columns = 1
    #: Keyword arguments of :func:`save_figure` for this result's figure.
    savefig_options = {}
    #: Keep NaN and infinities in the JSON (``NaN``/``Infinity``) instead of ``null``.
    allow_nan = False

    def to_dict(self):
        """The result as a JSON-safe dict (without the fields marked ``in_json=False``:
        per-example arrays kept for intervals, see :func:`array_field`)."""
        return jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                         if f.metadata.get("in_json", True)}, self.allow_nan)

    def to_json(self, path, **options):
        """Write ``to_dict(**options)`` to ``path`` as JSON (atomically); returns ``path``."""
        return atomic_write_json(self.to_dict(**options), path, allow_nan=self.allow_nan)

    def figure(self):
        """The result's matplotlib figure: ``draw(axes)`` on ``new_figure(figure_columns)``."""
        figure, axes = new_figure(self.figure_columns)
        self.draw(axes)
        return figure

    def plot(self, path, **options):
        """Write ``figure(**options)`` to ``path`` (PNG, atomically); returns ``path``."""
        return save_figure(self.figure(**options), path, **self.savefig_options)
