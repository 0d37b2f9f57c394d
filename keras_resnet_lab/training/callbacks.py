"""Training callbacks: JSON history, atomic checkpoints, stop on non-finite loss.

``JsonHistory`` file format (``history.json``)::

    {"format": "keras_resnet_lab.history/1",
     "epochs": [{"epoch": 1, "loss": 0.93, "accuracy": 0.61, "val_loss": ..., "lr": 0.1,
                 "time_s": 2.41}, ...]}

``epoch`` is 1-based (as Keras's progbar prints it), ``lr`` is the learning rate of the epoch's
first optimizer step, ``time_s`` the wall time of the epoch (training + validation). Non-finite
log values are written as ``null`` (strict JSON).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time

import keras
import numpy as np

from keras_resnet_lab.atomic import atomic_write_json, save_model_atomic
from keras_resnet_lab.outdir import ensure_free_space, remove_folder_atomically

__all__ = [
    "HISTORY_FORMAT",
    "AtomicBackupAndRestore",
    "AtomicModelCheckpoint",
    "JsonHistory",
    "TerminateOnNonFinite",
    "backup_epoch",
    "check_backup",
    "history_columns",
    "load_history",
]

HISTORY_FORMAT = "keras_resnet_lab.history/1"


def _to_float(value):
    """A log value as a Python float (``None`` if not finite), or a list for arrays."""
    arr = np.asarray(keras.ops.convert_to_numpy(value), dtype="float64")
    if arr.size == 1:
        v = float(arr.reshape(()))
        return v if math.isfinite(v) else None
    return [x if math.isfinite(x) else None for x in arr.ravel().tolist()]


def _current_lr(model):
    """The optimizer's learning rate for its next step, as a float (``None`` if unknown)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        return _to_float(optimizer.learning_rate)
    except (TypeError, ValueError, AttributeError):
        return None


def load_history(path):
    """Read a ``history.json`` written by ``JsonHistory``: the list of per-epoch records.

    Args:
        path: path of the JSON file.

    Example:
        >>> records = load_history("runs/a/history.json")  # doctest: +SKIP
        >>> [r["epoch"] for r in records]  # doctest: +SKIP
        [1, 2, 3, 4]
    """
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get("epochs"), list):
        raise ValueError(
            f"path={os.fspath(path)!r} is not a JsonHistory file: expected an object with an "
            "'epochs' list"
        )
    return data["epochs"]


def history_columns(records):
    """Per-epoch records -> ``{key: [value per epoch]}`` (like ``keras.callbacks.History``).

    Missing values (a key absent from some epochs, or a non-finite value) become ``nan``.

    Args:
        records: list of dicts as written by ``JsonHistory``.

    Example:
        >>> history_columns([{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.5}])
        {'epoch': [1, 2], 'loss': [2.0, 1.5]}
    """
    keys = []
    for rec in records:
        keys.extend(k for k in rec if k not in keys)
    columns = {}
    for key in keys:
        col = []
        for rec in records:
            v = rec.get(key)
            col.append(float("nan") if v is None else v)
        columns[key] = col
    return columns


class JsonHistory(keras.callbacks.Callback):
    """Write the whole training history to JSON after every epoch, atomically.

    Each epoch appends a record ``{"epoch", every log value, "lr", "time_s"}`` and rewrites
    ``path`` (temporary file + ``os.replace``), so the file is always complete and readable
    while training runs. With ``resume=True`` an existing file is loaded at train begin and
    continued: at the first epoch of this run (``initial_epoch``, e.g. restored by
    ``keras.callbacks.BackupAndRestore`` in its ``on_train_begin``) records of that epoch and
    later are dropped, so a resumed run replaces them instead of duplicating. Put it *before*
    ``BackupAndRestore`` in the callback list: the history is then written before the backup
    at each epoch end, so a crash between the two can only leave an extra record (replaced on
    resume), never a missing one.

    Args:
        path: the ``.json`` file to write.
        resume: continue an existing file (True) or start a new one (False).

    Attributes:
        records: the list of per-epoch records (also what is in the file).

    Example:
        >>> model.fit(x, y, epochs=3, callbacks=[JsonHistory("out/history.json")])
        ... # doctest: +SKIP
    """

    def __init__(self, path, resume=True):
        super().__init__()
        path = os.fspath(path)
        if not path.endswith(".json"):
            raise ValueError(f"path must end in '.json', got path={path!r}")
        self.path = path
        self.resume = bool(resume)
        self.records = []
        self._first_epoch_seen = False
        self._epoch_start = None
        self._epoch_lr = None

    def on_train_begin(self, logs=None):
        self.records = []
        if self.resume and os.path.exists(self.path):
            self.records = list(load_history(self.path))
        self._first_epoch_seen = False

    def on_epoch_begin(self, epoch, logs=None):
        if not self._first_epoch_seen:
            self._first_epoch_seen = True
            self.records = [r for r in self.records if r.get("epoch", 0) <= epoch]
        self._epoch_lr = _current_lr(self.model)
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = None
        if self._epoch_start is not None:
            elapsed = time.perf_counter() - self._epoch_start
        record = {"epoch": epoch + 1}
        for key, value in (logs or {}).items():
            try:
                record[key] = _to_float(value)
            except (TypeError, ValueError):
                continue  # a non-numeric log entry: not part of the history
        record["lr"] = self._epoch_lr
        record["time_s"] = elapsed
        self.records = [r for r in self.records if r.get("epoch", 0) < epoch + 1]
        self.records.append(record)
        self.write()

    def write(self):
        """Write the records to ``path`` now (atomically)."""
        atomic_write_json({"format": HISTORY_FORMAT, "epochs": self.records}, self.path)

    @property
    def columns(self):
        """The history as ``{key: [value per epoch]}``."""
        return history_columns(self.records)


def _non_finite_losses(logs):
    bad = {}
    for key, value in (logs or {}).items():
        if key == "loss" or key.endswith("_loss"):
            try:
                v = float(np.asarray(keras.ops.convert_to_numpy(value)).reshape(()))
            except (TypeError, ValueError):
                continue
            if not math.isfinite(v):
                bad[key] = v
    return bad


class AtomicModelCheckpoint(keras.callbacks.Callback):
    """Save the whole model to a ``.keras`` file at the end of every epoch, atomically.

    The model is written to a temporary ``.keras`` file in the same folder and moved onto
    ``path`` with ``os.replace``: a crash mid-save leaves the previous checkpoint intact.
    Epochs whose loss is NaN/inf are not saved (``skip_non_finite``), so the last good model
    survives a divergence.

    Args:
        path: the ``.keras`` file.
        skip_non_finite: do not overwrite the checkpoint after an epoch with NaN/inf loss.
        verbose: print a line for each save or skip.

    Example:
        >>> model.fit(x, y, callbacks=[AtomicModelCheckpoint("out/last.keras")])
        ... # doctest: +SKIP
    """

    def __init__(self, path, skip_non_finite=True, verbose=0):
        super().__init__()
        path = os.fspath(path)
        if not path.endswith(".keras"):
            raise ValueError(f"path must end in '.keras' (Keras v3 format), got path={path!r}")
        self.path = path
        self.skip_non_finite = bool(skip_non_finite)
        self.verbose = verbose
        self.last_saved_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        bad = _non_finite_losses(logs) if self.skip_non_finite else {}
        if bad:
            if self.verbose:
                print(f"AtomicModelCheckpoint: epoch {epoch + 1} has {bad}; not saved")
            return
        save_model_atomic(self.model, self.path)
        self.last_saved_epoch = epoch + 1
        if self.verbose:
            print(f"AtomicModelCheckpoint: saved epoch {epoch + 1} to {self.path}")


class TerminateOnNonFinite(keras.callbacks.Callback):
    """Stop training at once when the batch loss becomes NaN or infinite.

    Checked after every training batch (every ``steps_per_execution`` batches if that is
    > 1). Keras's logged batch loss is the running mean over the epoch, so it turns non-finite
    at the first bad batch and stays so. On detection it prints a message naming the epoch and
    step (both 1-based), stores it in ``message``, and sets ``model.stop_training`` (Keras
    then ends the epoch loop immediately).

    Args:
        monitor: the log key to check (default ``"loss"``).

    Attributes:
        message: the stop message, or ``None`` if training never diverged.
        stopped_epoch: 1-based epoch of the divergence, or ``None``.
        stopped_step: 1-based step within that epoch, or ``None``.

    Example:
        >>> cb = TerminateOnNonFinite()
        >>> model.fit(x, y, callbacks=[cb]); print(cb.message)  # doctest: +SKIP
    """

    def __init__(self, monitor="loss"):
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"monitor must be a non-empty log key, got monitor={monitor!r}")
        self.monitor = monitor
        self.message = None
        self.stopped_epoch = None
        self.stopped_step = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self.message = None
        self.stopped_epoch = None
        self.stopped_step = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if not logs or self.monitor not in logs:
            return
        try:
            value = float(np.asarray(keras.ops.convert_to_numpy(logs[self.monitor])).reshape(()))
        except (TypeError, ValueError):
            return
        if math.isfinite(value):
            return
        self.stopped_epoch = self._epoch + 1
        self.stopped_step = batch + 1
        self.message = (
            f"TerminateOnNonFinite: {self.monitor} is {value} at epoch {self.stopped_epoch}, "
            f"step {self.stopped_step}; training stopped"
        )
        print(self.message)
        self.model.stop_training = True


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras's ``BackupAndRestore`` whose backup is replaced whole, never half-written.

    Keras writes the weights and the epoch counter of its backup one file after the other, in
    place, so a run killed during the write can leave a truncated weights file or a counter
    that disagrees with the weights. Here each backup is written into a fresh sibling folder
    and swapped in with renames (``backup`` -> ``backup.old``, ``backup.new`` -> ``backup``);
    a run killed between the two renames is repaired at the next start from ``backup.old``.
    Only complete, consistent backups are ever read.

    Args:
        backup_dir: the backup folder (removed when training ends normally).
        **kwargs: as ``keras.callbacks.BackupAndRestore`` (``save_freq`` must be ``"epoch"``).

    Example:
        >>> model.fit(x, y, callbacks=[AtomicBackupAndRestore("out/backup")])  # doctest: +SKIP
    """

    def __init__(self, backup_dir, **kwargs):
        if kwargs.get("save_freq", "epoch") != "epoch":
            raise ValueError("AtomicBackupAndRestore saves at epoch ends only: "
                             f"save_freq must be 'epoch', got {kwargs['save_freq']!r}")
        kwargs["double_checkpoint"] = False
        super().__init__(os.fspath(backup_dir), **kwargs)
        self._final_dir = os.fspath(backup_dir).rstrip(os.sep)
        self._diverged = False

    def on_train_begin(self, logs=None):
        self._diverged = False
        old = self._final_dir + ".old"
        if not os.path.isdir(self._final_dir) and os.path.isdir(old):
            os.replace(old, self._final_dir)  # killed between the two renames: restore
        for leftover in (old, self._final_dir + ".new"):
            if os.path.isdir(leftover):
                _rmtree(leftover)
        if os.path.isdir(self._final_dir):
            check_backup(self._final_dir, (self.params or {}).get("epochs"))
        try:
            super().on_train_begin(logs)
        except Exception as error:  # noqa: BLE001  (any failure to read it is the backup's)
            text = str(error).strip()
            first = text.splitlines()[0] if text else type(error).__name__
            raise ValueError(
                f"cannot resume from the training backup in {self._final_dir}: it is "
                f"incomplete or corrupt ({first}). Delete that folder to start over (or train "
                "with --force / fit(resume=False))") from error

    def on_epoch_end(self, epoch, logs=None):
        if _non_finite_losses(logs):
            # A diverged epoch is not backed up: the last good backup stays, and is kept
            # when training ends, so the run can resume from it.
            self._diverged = True
            return
        super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        # Keras deletes the backup with rmtree, which a kill can leave half-deleted (then
        # refused as damaged); renamed away first, it is either whole or gone.
        if not self._diverged and self.delete_checkpoint:
            remove_folder_atomically(self._final_dir)

    def _save_model(self):
        new, old = self._final_dir + ".new", self._final_dir + ".old"
        if os.path.isdir(new):
            _rmtree(new)
        weights = os.path.join(self._final_dir, os.path.basename(self._weights_path))
        needed = (os.path.getsize(weights) if os.path.isfile(weights)
                  else variables_bytes(self.model))
        ensure_free_space(os.path.dirname(os.path.abspath(self._final_dir)), needed,
                          "the training backup (the last good backup is kept)")
        try:
            os.makedirs(new)
            self.model.save_weights(os.path.join(new, os.path.basename(self._weights_path)))
            with open(os.path.join(new, os.path.basename(self._training_metadata_path)), "w",
                      encoding="utf-8") as f:
                json.dump({"epoch": self._current_epoch, "batch": self._last_batch_seen}, f)
        except OSError as error:
            _rmtree(new)
            raise OSError(error.errno, f"cannot write the training backup into {new}: "
                          f"{error.strerror or error}; the last good backup is kept in "
                          f"{self._final_dir}") from error
        if os.path.isdir(self._final_dir):
            os.replace(self._final_dir, old)
        os.replace(new, self._final_dir)
        if os.path.isdir(old):
            _rmtree(old)


def variables_bytes(model):
    """Bytes of ``model``'s variables and its optimizer's: about the size of a backup."""
    variables = list(model.weights)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        variables += list(getattr(optimizer, "variables", []))
    total = 0
    for v in variables:
        total += int(np.prod(v.shape)) * np.dtype(keras.backend.standardize_dtype(v.dtype)).itemsize
    return total


BACKUP_WEIGHTS = "latest.weights.h5"
BACKUP_METADATA = "training_metadata.json"


def backup_epoch(backup_dir):
    """Epochs finished by the run whose backup is ``backup_dir`` (read from its metadata)."""
    with open(os.path.join(backup_dir, BACKUP_METADATA), encoding="utf-8") as f:
        return int(json.load(f)["epoch"])


def check_backup(backup_dir, epochs=None):
    """Refuse a damaged training backup with one line naming the folder and what is wrong.

    A backup is whole when its weights file is there and not empty, and its metadata names a
    number of finished epochs between 1 and the run's ``epochs``.

    Raises:
        ValueError: the backup is damaged.

    Example:
        >>> check_backup("runs/a/backup", epochs=10)  # doctest: +SKIP
    """
    def refuse(what):
        raise ValueError(f"cannot resume from the training backup in {backup_dir}: {what}. "
                         "Delete that folder to start over (or train with --force / "
                         "fit(resume=False))")

    weights = os.path.join(backup_dir, BACKUP_WEIGHTS)
    metadata = os.path.join(backup_dir, BACKUP_METADATA)
    if not os.path.isfile(weights):
        refuse(f"its weights file {BACKUP_WEIGHTS} is missing")
    if os.path.getsize(weights) == 0:
        refuse(f"its weights file {BACKUP_WEIGHTS} is empty")
    if not os.path.isfile(metadata):
        refuse(f"its metadata {BACKUP_METADATA} (the epoch it was written at) is missing")
    try:
        with open(metadata, encoding="utf-8") as f:
            epoch = json.load(f)["epoch"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        refuse(f"its metadata {BACKUP_METADATA} is unreadable or corrupt "
               f"({type(error).__name__})")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        refuse(f"its metadata claims epoch {epoch!r}, not a number of finished epochs >= 1")
    if epochs is not None and epoch > epochs:
        refuse(f"its metadata claims {epoch} finished epochs, more than the run's {epochs}")
    return epoch


def _rmtree(path):
    shutil.rmtree(path, ignore_errors=True)
