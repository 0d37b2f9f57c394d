"""Output folders: only ours are written into or replaced, one writer at a time, no stale
temporaries, no write the disk cannot hold (``keras_resnet_lab.outdir``)."""

import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest

from keras_resnet_lab import outdir


def _light_env(**extra):
    """A child process that imports ``keras_resnet_lab.outdir`` without TensorFlow."""
    return dict(os.environ, PYTHONPATH=os.getcwd(), KERAS_RESNET_LAB_DEFER_IMPORTS="1",
                **extra)


def _user_folder(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    return folder


def test_a_folder_of_the_users_is_never_written_into(tmp_path):
    folder = _user_folder(tmp_path)
    with pytest.raises(FileExistsError, match="did not write"):
        with outdir.owned_folder(folder, "analyze", reuse=True):
            pass
    assert sorted(os.listdir(folder)) == ["thesis.tex"]
    with pytest.raises(FileExistsError, match="already holds files; pass --force"):
        outdir.check_out(folder, reuse=False)


def test_our_folder_is_reused_and_marked(tmp_path):
    with outdir.owned_folder(tmp_path / "run", "train") as out:
        (tmp_path / "run" / "history.json").write_text("{}")
        assert out == str(tmp_path / "run")
        assert (tmp_path / "run" / outdir.LOCK_NAME).exists()
    marker = json.loads((tmp_path / "run" / outdir.MARKER_NAME).read_text())
    assert marker["kind"] == "train" and marker["format"] == outdir.MARKER_FORMAT
    assert not (tmp_path / "run" / outdir.LOCK_NAME).exists()  # released
    with outdir.owned_folder(tmp_path / "run", "train", reuse=True):
        pass
    with pytest.raises(FileExistsError, match="already holds files"):
        with outdir.owned_folder(tmp_path / "run", "train"):
            pass


def test_a_folder_created_for_a_failed_run_is_removed_again(tmp_path):
    with pytest.raises(RuntimeError):
        with outdir.owned_folder(tmp_path / "new", "vis"):
            raise RuntimeError("the model was refused")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("path, error, message", [
    ("", ValueError, "empty"),
    ("{file}", NotADirectoryError, "is a file"),
    ("{file}/sub", NotADirectoryError, "is below the file"),
])
def test_bad_folder_paths_are_refused_before_anything_is_written(path, error, message,
                                                                  tmp_path):
    (tmp_path / "file.txt").write_text("x")
    path = path.format(file=tmp_path / "file.txt")
    with pytest.raises(error, match=message):
        outdir.check_out(path)
    assert sorted(os.listdir(tmp_path)) == ["file.txt"]


def test_only_our_artifacts_are_replaced(tmp_path, monkeypatch):
    user = _user_folder(tmp_path)
    with pytest.raises(FileExistsError, match="not an artifact of keras_resnet_lab"):
        outdir.check_target(user, overwrite=True)
    ours = tmp_path / "onnx"
    ours.mkdir()
    (ours / "manifest.json").write_text(json.dumps(
        {"artifact": {"format": "onnx"}, "versions": {"keras_resnet_lab": "0.1.0"}}))
    assert outdir.check_target(ours, overwrite=True) == str(ours)
    with pytest.raises(FileExistsError, match="already exists"):
        outdir.check_target(ours, overwrite=False)
    monkeypatch.chdir(ours)  # the current folder and its parents are never replaced
    for root_like in (".", str(tmp_path), "/", os.path.expanduser("~")):
        with pytest.raises(ValueError, match="never replaced"):
            outdir.check_target(root_like, overwrite=True)
    with pytest.raises(ValueError, match="empty"):
        outdir.check_target("", overwrite=True)


HOLD = textwrap.dedent("""
    import sys, time
    from keras_resnet_lab.outdir import folder_lock
    with folder_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
""")


def test_a_folder_in_use_is_refused_naming_the_process(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], env=_light_env(),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(outdir.FolderInUseError, match=f"in use by process {proc.pid}"):
            with outdir.owned_folder(tmp_path, "train", reuse=True):
                pass
    finally:
        proc.kill()
        proc.wait()
    # the holder was killed: its lock file is still there, but the lock is free
    assert (tmp_path / outdir.LOCK_NAME).exists()
    with outdir.folder_lock(tmp_path):
        held = json.loads((tmp_path / outdir.LOCK_NAME).read_text())
        assert held["pid"] == os.getpid()


def test_a_stale_lock_file_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / outdir.LOCK_NAME).write_text(json.dumps({"pid": int(dead)}))
    with outdir.folder_lock(tmp_path):
        assert json.loads((tmp_path / outdir.LOCK_NAME).read_text())["pid"] == os.getpid()


def test_locks_are_reentrant_and_inherited_by_children(tmp_path):
    with outdir.folder_lock(tmp_path), outdir.folder_lock(tmp_path):
        env = outdir.inherit_locks_env()
        child = subprocess.run(
            [sys.executable, "-c", "import sys\nfrom keras_resnet_lab.outdir import folder_lock"
             "\nwith folder_lock(sys.argv[1]): print('ok')", str(tmp_path)],
            env=_light_env(**{outdir.INHERITED_LOCKS: env[outdir.INHERITED_LOCKS]}),
            capture_output=True, text=True)
        assert child.stdout.strip() == "ok", child.stderr[-500:]


def test_stale_temporaries_of_a_killed_run_are_cleaned_up(tmp_path):
    run = tmp_path / "run"
    (run / "steps").mkdir(parents=True)
    (run / "history.json").write_text(json.dumps({"format": "keras_resnet_lab.history/1"}))
    stale = [run / ".history-1a2b3c4d.tmp.json", run / ".model-0000abcd.tmp.keras",
             run / "steps" / ".train-12345678.tmp.json"]
    for path in stale:
        path.write_text("partial")
    for name in (".savedmodel-deadbeef.tmp", ".backup-01234567.trash"):
        (run / name).mkdir()
        (run / name / "x").write_text("partial")
    keep = [run / ".history.json.bak", run / ".model-notours.tmp.keras", run / "notes.tmp"]
    for path in keep:
        path.write_text("the user's")
    with outdir.owned_folder(run, "lab", reuse=True):
        pass
    left = sorted(p.name for p in run.rglob("*"))
    assert left == sorted([outdir.MARKER_NAME, "history.json", "steps"]
                          + [p.name for p in keep])


def test_an_artifact_moved_aside_is_put_back_when_its_successor_never_arrived(tmp_path):
    old = tmp_path / ".onnx-0123abcd.old"
    old.mkdir()
    (old / "model.onnx").write_text("the earlier artifact")
    (tmp_path / ".onnx-89abcdef.tmp").mkdir()  # the successor, staged but never renamed in
    outdir.remove_stale(tmp_path, names={"onnx"})
    assert (tmp_path / "onnx" / "model.onnx").read_text() == "the earlier artifact"
    assert sorted(os.listdir(tmp_path)) == ["onnx"]


def test_a_write_the_disk_cannot_hold_is_refused_first(tmp_path, monkeypatch):
    outdir.ensure_free_space(tmp_path, 1 << 20, "the backup")  # plenty of room here
    usage = os.statvfs(tmp_path)
    free = usage.f_bavail * usage.f_frsize
    with pytest.raises(OSError, match="not enough free disk space for the backup") as error:
        outdir.ensure_free_space(tmp_path / "new" / "folder", free + (1 << 30), "the backup")
    assert error.value.errno == errno.ENOSPC and "MiB free" in str(error.value)


def test_removing_a_folder_is_whole_or_nothing(tmp_path):
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "w.h5").write_text("x")
    outdir.remove_folder_atomically(tmp_path / "backup")
    outdir.remove_folder_atomically(tmp_path / "backup")  # gone already: nothing to do
    assert os.listdir(tmp_path) == []
