"""Atomic artifact writes: build in a staging folder next to the target, then rename.

An export never leaves a half-written artifact under its final name: everything is written into
``.<name>-<random>.tmp`` in the target's own folder (same file system, so the rename is atomic),
checked there, and only then renamed onto the target. Replacing an existing artifact moves the
old one aside first, renames the new one in, and only then deletes the old one.
"""

import contextlib
import errno
import os
import shutil
import uuid

from keras_resnet_lab import outdir
from keras_resnet_lab.outdir import ensure_free_space, folder_lock, remove_stale

_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


#: Refuse what an export must not replace (see :func:`keras_resnet_lab.outdir.check_target`).
check_target = outdir.check_target


def check_room(model, targets, copies=1):
    """Refuse, before anything is written, an export the disk cannot hold (about the model's
    weights ``copies`` times per artifact, plus the graph: the LiteRT export writes a
    scratch SavedModel beside its flatbuffer, so it counts 2)."""
    import numpy as np

    weights = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in model.weights)
    ensure_free_space(os.path.dirname(targets[0]), len(targets) * copies * (weights + (4 << 20)),
                      "the export")


def _path_error(path, error):
    """A clear user-facing error for an OSError raised while creating ``path``."""
    reason = error.strerror or str(error)
    if error.errno in _DENIED:
        return PermissionError(f"cannot write the export to {path}: {reason} "
                               f"({error.filename or os.path.dirname(path)}).")
    if error.errno == errno.ENOSPC:
        return OSError(errno.ENOSPC, f"cannot write the export to {path}: {reason} "
                       f"({error.filename or os.path.dirname(path)}).")
    return ValueError(f"`path` {path!r} cannot be written: {reason} "
                      f"({error.filename or os.path.dirname(path)}).")


def _make_parents(folder):
    """Create ``folder`` and its missing parents; return the ones created, deepest first."""
    created = []
    while not os.path.isdir(folder):
        if os.path.lexists(folder):
            raise NotADirectoryError(errno.ENOTDIR, "a path component is not a folder", folder)
        created.append(folder)
        folder = os.path.dirname(folder)
    for directory in reversed(created):
        os.mkdir(directory)
    return created


@contextlib.contextmanager
def staging_dir(target):
    """Yield a fresh empty folder next to ``target``; remove it (and any parents this call
    created) unless :func:`commit` moved it away.

    While the body runs, ``target``'s lock (``.<name>.lock`` next to it) is held, so a second
    export to the same target is refused at once; what a killed export to it left
    (``.<name>-*.tmp`` staging folders, a ``.<name>-*.old`` earlier artifact) is cleaned up
    first (:func:`keras_resnet_lab.outdir.remove_stale`).

    Args:
        target: the absolute final path of the artifact folder.

    Raises:
        PermissionError: the folder of ``target`` is not writable.
        ValueError: ``target`` cannot be created (e.g. a path component is a file).
        FolderInUseError: another process is exporting to ``target``.

    Example:
        >>> with staging_dir("/tmp/out/model") as tmp:  # doctest: +SKIP
        ...     write_artifact(tmp)
        ...     commit(tmp, "/tmp/out/model", overwrite=False)
    """
    parent, name = os.path.split(target)
    try:
        created = _make_parents(parent)
    except OSError as error:
        raise _path_error(target, error) from error
    try:
        with folder_lock(parent, f".{name}.lock", what=f"export target {target}:"):
            remove_stale(parent, names={name})
            tmp = os.path.join(parent, f".{name}-{uuid.uuid4().hex[:8]}.tmp")
            try:
                os.mkdir(tmp)
            except OSError as error:
                raise _path_error(target, error) from error
            try:
                yield tmp
            except OSError as error:
                if isinstance(error, (PermissionError, FileExistsError, FileNotFoundError)):
                    raise
                raise _path_error(target, error) from error
            finally:
                if os.path.lexists(tmp):
                    shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if not os.path.lexists(target):
            _remove_empty(created)


def _remove_empty(folders):
    for folder in folders:
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def commit(tmp, target, overwrite):
    """Rename the staged folder ``tmp`` onto ``target`` atomically.

    With ``overwrite`` an existing target (an artifact of ours, checked again here) is moved
    aside, the new one renamed in, and the old one deleted; if the rename fails the old one is
    put back, and if the process dies in between, the next export to ``target`` puts it back.

    Raises:
        FileExistsError: ``target`` appeared meanwhile and ``overwrite`` is False, or it is
            not an artifact of ours.
    """
    if not os.path.lexists(target):
        os.rename(tmp, target)
        return
    check_target(target, overwrite)
    parent, name = os.path.split(target)
    old = os.path.join(parent, f".{name}-{uuid.uuid4().hex[:8]}.old")
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except OSError:
        os.rename(old, target)
        raise
    # Interrupted, this leaves a partial ``.old`` beside the new target: removed at the next
    # export to it (remove_stale), never put back since the target exists.
    shutil.rmtree(old, ignore_errors=True)


def write_artifact(model, path, overwrite, stage, copies=1):
    """The one way an artifact folder is written: refuse a target that is not ours (or any
    target without ``overwrite``) and a disk that cannot hold it, build it with
    ``stage(tmp, target)`` in a staging folder beside ``path`` and rename it into place only
    when ``stage`` returns (its parity check passed); returns what ``stage`` returns."""
    target = check_target(path, overwrite)
    check_room(model, [target], copies=copies)
    with staging_dir(target) as tmp:
        manifest = stage(tmp, target)
        commit(tmp, target, overwrite)
    return manifest
