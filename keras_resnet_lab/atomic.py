"""Atomic file writes: write to a temporary file in the same folder, then ``os.replace``.

A reader (or a run killed half-way) never sees a half-written ``history.json``, ``model.keras``
or ``curves.png``: the final name points either at the previous complete file or at the new
complete file. ``os.replace`` is atomic when source and target are on the same file system,
which is why the temporary file lives in the target's own folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid

__all__ = ["atomic_path", "atomic_write_json", "atomic_write_text", "save_figure",
           "save_model_atomic"]


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
    if not path or path.endswith(os.sep):
        raise ValueError(f"path must name a file, got path={path!r}")
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
    """Save a matplotlib ``figure`` to ``path`` atomically (format from the extension).

    Example:
        >>> save_figure(figure, "out/curves.png")  # doctest: +SKIP
    """
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".") or "png"
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=fmt, dpi=dpi, **savefig_kwargs)
    return os.fspath(path)


def atomic_write_json(obj, path, indent=2):
    """Write ``obj`` as JSON to ``path`` atomically (temporary file + ``os.replace``).

    Args:
        obj: a JSON-serializable object. NaN/inf are refused (strict JSON): convert them first.
        path: the target ``.json`` path.
        indent: JSON indentation.

    Example:
        >>> atomic_write_json({"epochs": []}, "out/history.json")  # doctest: +SKIP
    """
    text = json.dumps(obj, indent=indent, allow_nan=False)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.write("\n")
    return os.fspath(path)


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
