"""Folders the project writes into: whose they are, who is writing them, what a killed run left.

Four rules keep a user's files and finished runs safe:

- **Ours or refused.** A folder a run of this project creates carries a marker file,
  ``.keras-resnet-lab.json``, naming the kind of run. An existing folder that holds files is
  written into (``--force``, ``--resume``) only when it carries the marker or is recognised as
  an earlier run of ours (:func:`is_ours`); anything else is refused with one line naming it.
  An artifact folder is replaced only when its ``manifest.json`` is ours
  (:func:`check_replaceable`), and an empty or root-like path (the file-system root, the home
  folder, the current folder or one of its parents) is never replaced.
- **One writer at a time.** A run holds ``.keras-resnet-lab.lock`` in its folder (an ``flock``,
  with the holder's process id inside) while it writes: a second run on the same folder is
  refused at once, naming that process. The kernel drops the lock with its process, so the
  lock of a killed run is free and is taken over.
- **No stale temporaries.** Every file is written under a temporary name and renamed
  (``.NAME-1a2b3c4d.tmp.EXT``, ``.NAME-1a2b3c4d.tmp`` folders); a replaced artifact is moved
  aside (``.NAME-1a2b3c4d.old``) until its successor is in place, and a deleted folder is
  renamed away first (``.NAME-1a2b3c4d.trash``). Once the lock is held, what a killed run left
  is cleaned up, the earlier artifact put back if its successor never arrived
  (:func:`remove_stale`).
- **Room before writing.** :func:`ensure_free_space` refuses a write that the disk cannot hold
  (``OSError`` ENOSPC naming the folder and both figures) before a byte is written, so a full
  disk never leaves a half-written file or crashes inside a writer.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import re
import shutil
import sys

__all__ = ["LOCK_NAME", "MARKER_NAME", "FolderInUseError", "check_out", "check_path",
           "check_replaceable", "check_target",
           "ensure_free_space", "folder_lock", "is_ours", "is_root_like", "owned_folder",
           "remove_stale", "write_marker"]

MARKER_NAME = ".keras-resnet-lab.json"
MARKER_FORMAT = "keras_resnet_lab.folder/1"
LOCK_NAME = ".keras-resnet-lab.lock"
#: Environment variable naming the locks a parent process holds for its children (the
#: ``train --workers`` launcher): a JSON list of ``[pid, lock file]`` pairs.
INHERITED_LOCKS = "KERAS_RESNET_LAB_HELD_LOCKS"
#: Temporary names of our atomic writes: ``.{stem}-{8 hex}.tmp{ext}`` and ``.{name}-{8 hex}.old``.
_TEMPORARY = re.compile(
    r"^\.(?P<name>.+)-[0-9a-f]{8}\.(?P<kind>tmp(?:\.[A-Za-z0-9]+)?|old|trash)$")
#: Files that mark a folder as an earlier run of ours written before the marker existed.
_HISTORY_FORMAT = "keras_resnet_lab.history/1"

_held: dict[str, int] = {}


class FolderInUseError(BlockingIOError):
    """Another process is writing into the folder (it holds the folder's lock)."""


def _describe(path):
    return os.fspath(path) or "''"


def check_path(path, what="--out"):
    """Return ``path`` as an absolute path; refuse an empty one or one below a file.

    Raises:
        ValueError: ``path`` is empty or not a path.
        NotADirectoryError: ``path`` or one of its parents is a file.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{what} must be a folder path, got {path!r}.")
    text = os.fspath(path)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what} must be a folder path, got {text!r} (empty).")
    absolute = os.path.abspath(text)
    folder = absolute
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        where = "is a file" if folder == absolute else f"is below the file {folder}"
        raise NotADirectoryError(errno.ENOTDIR, f"{what} {text} {where}, not a folder")
    return absolute


def is_root_like(path):
    """Whether replacing ``path`` would replace a folder no run of ours can own: the
    file-system root, the home folder, the current folder or one of its parents."""
    path = os.path.realpath(os.path.abspath(path))
    cwd = os.path.realpath(os.getcwd())
    home = os.path.realpath(os.path.expanduser("~"))
    return (path == os.path.dirname(path) or path == home
            or cwd == path or cwd.startswith(path.rstrip(os.sep) + os.sep))


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def is_ours(folder):
    """Whether ``folder`` was written by this project: it carries the marker, or (runs from
    before the marker) a ``history.json`` of ours, the lab's ``steps/`` records or an export
    ``manifest.json`` of ours."""
    marker = _read_json(os.path.join(folder, MARKER_NAME))
    if isinstance(marker, dict) and marker.get("format") == MARKER_FORMAT:
        return True
    history = _read_json(os.path.join(folder, "history.json"))
    if isinstance(history, dict) and history.get("format") == _HISTORY_FORMAT:
        return True
    steps = os.path.join(folder, "steps")
    if os.path.isdir(steps) and os.path.isfile(os.path.join(folder, "steps", "train.json")):
        return True
    return is_our_artifact(folder)


def is_our_artifact(folder):
    """Whether ``folder`` is an export artifact of ours: its ``manifest.json`` is ours."""
    manifest = _read_json(os.path.join(folder, "manifest.json"))
    return (isinstance(manifest, dict) and isinstance(manifest.get("versions"), dict)
            and "keras_resnet_lab" in manifest["versions"] and "artifact" in manifest)


def check_replaceable(target, what="path"):
    """Refuse to replace ``target`` unless it is an earlier artifact of ours.

    Raises:
        ValueError: ``target`` is empty or root-like (never replaced).
        FileExistsError: ``target`` exists and is not an artifact of ours (no manifest of ours).
    """
    if not os.fspath(target).strip():
        raise ValueError(f"{what} must name an artifact folder, got '' (empty).")
    if is_root_like(target):
        raise ValueError(f"{what} {target} is the file-system root, the home folder, the current "
                         "folder or one of its parents: it is never replaced.")
    if os.path.lexists(target) and not (os.path.isdir(target) and not os.path.islink(target)
                                        and is_our_artifact(target)):
        raise FileExistsError(f"{target} exists and is not an artifact of keras_resnet_lab "
                              "(no manifest.json of ours): refusing to replace it; choose "
                              "another path or move it away.")


def check_target(path, overwrite):
    """Return the artifact path ``path`` as an absolute path, refusing what must not be
    replaced.

    Raises:
        ValueError: ``path`` is empty; or ``overwrite`` and it is root-like (the file-system
            root, the home folder, the current folder or a parent of it).
        NotADirectoryError: ``path`` lies below a file.
        FileExistsError: ``path`` exists and ``overwrite`` is False, or it is not an artifact
            of ours (no manifest.json of ours): only our own artifacts are ever replaced.
    """
    from keras_resnet_lab._checks import boolean

    overwrite = boolean("overwrite", overwrite)
    target = check_path(path, "export path")
    if os.path.lexists(target):
        if not overwrite:
            raise FileExistsError(f"export target {target} already exists; pass overwrite=True "
                                  "(CLI: --force) to replace it.")
        check_replaceable(target, "export path")
    return target


def write_marker(folder, kind):
    """Write the marker that says ``folder`` holds a ``kind`` run of this project."""
    from keras_resnet_lab import __version__
    from keras_resnet_lab.atomic import atomic_write_text

    path = os.path.join(folder, MARKER_NAME)
    if not os.path.isfile(path):
        data = {"format": MARKER_FORMAT, "kind": kind, "version": __version__,
                "created": datetime.datetime.now(datetime.UTC).isoformat()}
        atomic_write_text(json.dumps(data, indent=2) + "\n", path)


def _visible(folder):
    """The entries of ``folder`` but our marker, lock and multi-worker sub-folder."""
    return [name for name in os.listdir(folder)
            if name not in (LOCK_NAME, MARKER_NAME, ".workers")]


def make_folder(path, what="--out"):
    """Create ``path`` and its parents, turning an OSError into one clear line."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise _folder_error(path, error, what) from error
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"{what} {path} is not writable")
    return path


def _folder_error(path, error, what):
    reason = error.strerror or str(error)
    cls = PermissionError if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else OSError
    return cls(error.errno, f"cannot create {what} {path}: {reason}")


def check_out(path, *, reuse=False, what="--out", hint="pass --force"):
    """Check, without touching the disk, that ``path`` may be used as an output folder: a
    folder path, and either missing, empty, or (with ``reuse``) a folder of ours.

    Returns:
        the absolute path.

    Raises:
        ValueError, NotADirectoryError: not a usable folder path.
        FileExistsError: it holds files and ``reuse`` is False (the message ends with
            ``hint``), or it holds files this project did not write.
    """
    folder = check_path(path, what)
    if os.path.isdir(folder) and _visible(folder):
        if not reuse:
            raise FileExistsError(f"{what} {_describe(path)} already holds files; {hint}")
        if not is_ours(folder):
            raise FileExistsError(
                f"{what} {_describe(path)} holds files keras_resnet_lab did not write (no "
                f"{MARKER_NAME}): refusing to write into it; choose an empty or new folder")
    return folder


@contextlib.contextmanager
def owned_folder(path, kind, *, reuse=False, what="--out", hint="pass --force"):
    """Create or reuse the output folder ``path`` for a run of ``kind``, holding its lock.

    Checks the folder (:func:`check_out`), creates it, takes its lock (:func:`folder_lock`),
    checks it again under the lock, removes what a killed run of ours left
    (:func:`remove_stale`, recursively) and writes the marker. A folder this call created is
    removed again if the body fails before writing anything into it.

    Args:
        path: the folder.
        kind: what runs in it (``"train"``, ``"lab"``, ``"analyze"``, ``"vis"``).
        reuse: whether a folder that already holds files (of ours) may be written into.
        what: how the user named the folder, for messages (``"--out"``, ``"out_dir"``).
        hint: what to do to reuse a folder that holds files (``"pass --force"``).

    Yields:
        the absolute path.

    Example:
        >>> with owned_folder("runs/a", "analyze") as out:  # doctest: +SKIP
        ...     write_results(out)
    """
    folder = check_out(path, reuse=reuse, what=what, hint=hint)
    existed = os.path.isdir(folder)
    make_folder(folder, what)
    try:
        with folder_lock(folder, what=what):
            check_out(folder, reuse=reuse, what=what, hint=hint)
            remove_stale(folder, recursive=True)
            write_marker(folder, kind)
            yield folder
    except BaseException:
        if not existed and not _visible(folder):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, MARKER_NAME))
                os.rmdir(folder)
        raise


def _inherited():
    """Lock files a live ancestor process holds on this process's behalf."""
    try:
        entries = json.loads(os.environ.get(INHERITED_LOCKS) or "[]")
    except ValueError:
        return set()
    return {path for pid, path in entries if isinstance(pid, int) and _alive(pid)}


def inherit_locks_env(env=None):
    """``env`` (default ``os.environ``) plus the locks this process holds, for child processes
    that write into the same folders under this process's lock (``train --workers``)."""
    env = dict(os.environ if env is None else env)
    try:
        entries = json.loads(env.get(INHERITED_LOCKS) or "[]")
    except ValueError:
        entries = []
    entries += [[os.getpid(), path] for path in _held]
    env[INHERITED_LOCKS] = json.dumps(entries)
    return env


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(path):
    info = _read_json(path)
    if not isinstance(info, dict):
        return None, ""
    pid = info.get("pid")
    return (pid if isinstance(pid, int) else None), str(info.get("command", ""))


def _in_use(folder, path, what):
    pid, command = _holder(path)
    who = f"process {pid}" if pid is not None else "another process"
    if command:
        who += f" ({command})"
    return FolderInUseError(errno.EWOULDBLOCK,
                            f"{what} {folder} is in use by {who}: wait for it to finish or "
                            f"choose another folder (lock file {path})")


def _try_flock(fd):
    """True if locked, False if another process holds it, None if the file system has no
    locks (then the recorded process id decides)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            return None
        raise


def _acquire(folder, path, what):
    for _ in range(20):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        locked = _try_flock(fd)
        if locked is False:
            os.close(fd)
            raise _in_use(folder, path, what)
        if locked is None:
            pid, _ = _holder(path)
            if pid is not None and pid != os.getpid() and _alive(pid):
                os.close(fd)
                raise _in_use(folder, path, what)
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the previous holder removed the file meanwhile: lock the new one
            os.close(fd)
            continue
        record = json.dumps({"pid": os.getpid(), "command": _command(),
                             "started": datetime.datetime.now().isoformat(timespec="seconds")})
        os.ftruncate(fd, 0)
        os.write(fd, record.encode())
        return fd
    raise _in_use(folder, path, what)


def _command():
    argv = [os.path.basename(sys.argv[0] or "python")] + sys.argv[1:3]
    return " ".join(argv)


@contextlib.contextmanager
def folder_lock(folder, lock_name=LOCK_NAME, what="--out"):
    """Hold ``folder``'s lock file ``lock_name`` while the body runs.

    Re-entrant within a process, and a no-op for a lock the parent process holds for it
    (:func:`inherit_locks_env`).

    Raises:
        FolderInUseError: another live process holds the lock (the message names it).
    """
    path = os.path.join(os.path.abspath(folder), lock_name)
    if path in _held or path in _inherited():
        yield
        return
    try:
        fd = _acquire(folder, path, what)
    except FolderInUseError:
        raise
    except OSError as error:
        raise _folder_error(folder, error, what) from error
    _held[path] = fd
    try:
        yield
    finally:
        del _held[path]
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                os.remove(path)
        os.close(fd)


def remove_stale(folder, names=None, recursive=False):
    """Clean up what a killed run of ours left in ``folder``; returns the paths it touched.

    Only names our atomic writers make are touched: ``.NAME-1a2b3c4d.tmp[.EXT]`` (a write
    that never finished) and ``.NAME-1a2b3c4d.trash`` (a folder being deleted) are removed;
    ``.NAME-1a2b3c4d.old`` (an earlier artifact moved aside while its replacement was renamed
    in) is renamed back to ``NAME`` when ``NAME`` is missing, and removed otherwise. Call it
    while holding the folder's lock, so that no live writer's temporary is among them.

    Args:
        folder: the folder.
        names: only temporaries of these final names (e.g. ``{"onnx", "savedmodel"}``).
        recursive: also in sub-folders (not into sub-folders with a lock of their own).
    """
    touched = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return touched
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is not None and (names is None or match["name"] in names):
            final = os.path.join(folder, match["name"])
            if match["kind"] == "old" and not os.path.lexists(final):
                os.rename(entry.path, final)  # killed mid-replacement: the earlier one back
            elif entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.remove(entry.path)
            touched.append(entry.path)
        elif (recursive and entry.is_dir(follow_symlinks=False)
              and not os.path.exists(os.path.join(entry.path, LOCK_NAME))):
            touched += remove_stale(entry.path, names, recursive=True)
    return touched


def ensure_free_space(folder, needed, what):
    """Refuse, before writing, a write of about ``needed`` bytes that ``folder``'s disk cannot
    hold: ``OSError(ENOSPC)`` naming ``what``, the folder and both figures.

    A margin of 10% and 1 MiB is kept, since files take more room than their payload.
    """
    folder = os.path.abspath(folder)
    while not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            raise PermissionError(errno.EROFS, f"cannot write {what} into {folder}: Read-only "
                                  "file system")
        free = shutil.disk_usage(folder).free
    except PermissionError:
        raise
    except OSError:
        return
    wanted = int(needed * 1.1) + (1 << 20)
    if free < wanted:
        raise OSError(errno.ENOSPC,
                      f"not enough free disk space for {what} in {folder}: it needs about "
                      f"{_mib(wanted)}, {_mib(free)} free")


def _mib(n):
    return f"{n / (1 << 20):.1f} MiB"


def remove_folder_atomically(path):
    """Remove the folder ``path`` so that it is either whole or gone: renamed to a temporary
    name of ours first (swept by :func:`remove_stale` if the removal is interrupted)."""
    if not os.path.isdir(path):
        return
    parent, name = os.path.split(os.path.abspath(path))
    trash = os.path.join(parent, f".{name}-{os.urandom(4).hex()}.trash")
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)
