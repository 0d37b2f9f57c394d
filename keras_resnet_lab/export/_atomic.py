"""Atomic artifact writes: build in a staging folder next to the target, then rename.

An export never leaves a half-written artifact under its final name: everything is written into
``.<name>-<random>.tmp`` in the target's own folder (same file system, so the rename is atomic),
checked there, and only then renamed onto the target. Replacing an existing artifact moves the
old one aside first, renames the new one in, and only then deletes the old one.
"""

import contextlib
import errno
import json
import os
import shutil
import uuid

from keras_resnet_lab.atomic import atomic_path

_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def check_target(path, overwrite):
    """Return ``path`` as an absolute path; refuse an existing one unless ``overwrite``.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"export target {path} already exists; pass overwrite=True "
                              "(CLI: --force) to replace it.")
    return path


def _path_error(path, error):
    """A clear user-facing error for an OSError raised while creating ``path``."""
    reason = error.strerror or str(error)
    if error.errno in _DENIED:
        return PermissionError(f"cannot write the export to {path}: {reason} "
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

    Args:
        target: the absolute final path of the artifact folder.

    Raises:
        PermissionError: the folder of ``target`` is not writable.
        ValueError: ``target`` cannot be created (e.g. a path component is a file).

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
    tmp = os.path.join(parent, f".{name}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        os.mkdir(tmp)
    except OSError as error:
        _remove_empty(created)
        raise _path_error(target, error) from error
    try:
        yield tmp
    finally:
        if os.path.lexists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.lexists(target):
            _remove_empty(created)


def _remove_empty(folders):
    for folder in folders:
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def commit(tmp, target, overwrite):
    """Rename the staged folder ``tmp`` onto ``target`` atomically.

    With ``overwrite`` an existing target is moved aside, the new one renamed in, and the old
    one deleted; if the rename fails the old one is put back.

    Raises:
        FileExistsError: ``target`` appeared meanwhile and ``overwrite`` is False.
    """
    if not os.path.lexists(target):
        os.rename(tmp, target)
        return
    if not overwrite:
        raise FileExistsError(f"export target {target} already exists; pass overwrite=True "
                              "(CLI: --force) to replace it.")
    parent, name = os.path.split(target)
    old = os.path.join(parent, f".{name}-{uuid.uuid4().hex[:8]}.old")
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except OSError:
        os.rename(old, target)
        raise
    if os.path.isdir(old) and not os.path.islink(old):
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.remove(old)


#: Yield a temporary file path next to ``path``; on success it replaces ``path`` atomically.
atomic_file = atomic_path


def write_json(path, data):
    """Write ``data`` as indented JSON to ``path`` atomically (temp file + ``os.replace``)."""
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
