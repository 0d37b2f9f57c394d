"""Distribution strategies by name, multi-worker training, and "am I the chief?".

Build the model *and* compile it inside ``strategy.scope()`` (``fit`` does), so the same code
runs on one CPU, one GPU, all local GPUs (``"mirrored"``) or several machines
(``"multiworker"``). Everything here is TensorFlow's own ``tf.distribute``; nothing is
home-made but the two work-arounds Keras 3 needs under ``MultiWorkerMirroredStrategy`` and a
launcher that starts N local worker processes.

Several GPUs on one machine (``MirroredStrategy``, synchronous data parallelism): pass
``strategy="mirrored"`` to ``fit`` (``--strategy mirrored`` on the command line). Every visible
GPU holds a replica (choose them with ``CUDA_VISIBLE_DEVICES`` or ``devices``); the batch size is
the *global* batch, split evenly across replicas, so keep the per-GPU batch constant by
multiplying it by the number of GPUs, and the learning rate with it (linear scaling rule,
Goyal et al., arXiv 1706.02677). Gradients are all-reduced (NCCL on GPUs) before each update,
so every replica holds the same weights. Batch-norm statistics are per replica (per-GPU batch)
unless the layers use ``BatchNormalization(synchronized=True)``.

Several machines (``MultiWorkerMirroredStrategy``): set ``TF_CONFIG`` on every machine and run
the same command on each, e.g. on two hosts::

    # host a                                        # host b
    TF_CONFIG='{"cluster": {"worker": ["a:12345", "b:12345"]},
                "task": {"type": "worker", "index": 0}}'     (index 1 on host b)
    keras-resnet-lab train --model resnet56 --dataset cifar10 --strategy multiworker --out runs/r56

Worker 0 is the chief: it writes ``--out``; the others write ``--out/.workers/worker-<i>``.
``keras-resnet-lab train --workers N`` does the same with N processes on this machine
(``launch_local_workers``), which is how the multi-worker path is tested.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import tensorflow as tf

from keras_resnet_lab._checks import positive_int

__all__ = [
    "STRATEGIES",
    "free_ports",
    "get_strategy",
    "is_chief",
    "is_multi_worker",
    "launch_local_workers",
    "patch_for_multi_worker",
    "tf_config",
    "worker_id",
]

STRATEGIES = ("default", "mirrored", "multiworker")


def get_strategy(name=None, devices=None):
    """A ``tf.distribute.Strategy`` by name.

    - ``None`` / ``"default"``: ``tf.distribute.get_strategy()`` -- the strategy of the
      enclosing ``scope()`` if any, else TensorFlow's default (no distribution: one device,
      the first GPU if there is one, else the CPU).
    - ``"mirrored"``: ``tf.distribute.MirroredStrategy(devices)``: synchronous data
      parallelism over ``devices`` (default: all local GPUs; one replica on the CPU when there
      is no GPU). The dataset batch is the *global* batch, split across replicas.
    - ``"multiworker"``: ``tf.distribute.MultiWorkerMirroredStrategy()``: synchronous data
      parallelism across processes/machines. It reads the cluster from the ``TF_CONFIG``
      environment variable (``tf_config``), which must be set on every worker *before* this
      call, and this call must come before any other TensorFlow operation of the process
      ("Collective ops must be configured at program startup"); without ``TF_CONFIG`` it is
      a single local worker. The constructor blocks until all
      workers have started (a worker whose peer never starts hangs here and ignores SIGTERM:
      bound it with ``timeout -k``, or use ``launch_local_workers``, which kills the others
      when one fails). Keras 3 ``model.fit`` needs ``patch_for_multi_worker`` under it
      (``fit`` applies it).

    Args:
        name: one of ``STRATEGIES`` (case-insensitive) or ``None``.
        devices: for ``"mirrored"`` only: device names (``["/gpu:0", "/gpu:1"]``); ``None``
            uses every visible GPU.

    Example:
        >>> get_strategy("default").num_replicas_in_sync
        1
    """
    if name is None:
        name = "default"
    if not isinstance(name, str) or name.lower() not in STRATEGIES:
        raise ValueError(f"name must be one of {STRATEGIES} or None, got name={name!r}")
    name = name.lower()
    if devices is not None and name != "mirrored":
        raise ValueError(f"devices applies to name='mirrored' only, got name={name!r} with "
                         f"devices={devices!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.MultiWorkerMirroredStrategy()


def _task(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return None, None, {}
    try:
        cluster = resolver.cluster_spec().as_dict()
    except (AttributeError, ValueError):
        cluster = {}
    return getattr(resolver, "task_type", None), getattr(resolver, "task_id", None), cluster


def is_chief(strategy=None):
    """Whether this process should write shared results (models, JSON, figures).

    True unless ``strategy`` is a multi-worker strategy and this process is not its chief:
    the ``"chief"`` task, or worker 0 when the cluster has no chief task.

    Args:
        strategy: a ``tf.distribute.Strategy`` (default: the current one).

    Example:
        >>> is_chief()
        True
    """
    strategy = strategy or tf.distribute.get_strategy()
    task_type, task_id, cluster = _task(strategy)
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    if task_type == "worker":
        return "chief" not in cluster and (task_id or 0) == 0
    return False


def worker_id(strategy=None):
    """``"<task_type>-<task_id>"`` for a multi-worker task, ``None`` otherwise.

    Args:
        strategy: a ``tf.distribute.Strategy`` (default: the current one).

    Example:
        >>> worker_id() is None
        True
    """
    strategy = strategy or tf.distribute.get_strategy()
    task_type, task_id, _ = _task(strategy)
    if task_type is None:
        return None
    return f"{task_type}-{task_id or 0}"


def is_multi_worker(strategy=None):
    """Whether ``strategy`` is a ``MultiWorkerMirroredStrategy`` spanning more than one worker.

    The condition under which Keras 3 takes its (broken, see ``patch_for_multi_worker``)
    multi-worker code paths.

    Args:
        strategy: a ``tf.distribute.Strategy`` (default: the current one).

    Example:
        >>> is_multi_worker(get_strategy("default"))
        False
    """
    strategy = strategy or tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    in_mode = getattr(strategy.extended, "_in_multi_worker_mode", None)
    if in_mode is not None:
        return bool(in_mode())
    _, _, cluster = _task(strategy)
    return sum(len(tasks) for job, tasks in cluster.items() if job in ("chief", "worker")) > 1


def patch_for_multi_worker(model, sample_batch, strategy=None):
    """Work around Keras 3's ``fit``/``evaluate`` failures under multi-worker training.

    Keras 3 (up to at least 3.15) fails in two places when a model trains under a
    ``MultiWorkerMirroredStrategy`` of several workers (keras-team/keras#20585,
    tensorflow/tensorflow#72388):

    1. ``Trainer._maybe_symbolic_build`` all-reduces the first *distributed* batch eagerly
       ("Attempt to convert a value (PerReplica...)"). Here it is replaced, on this model
       only, by the symbolic build on ``sample_batch``, an ordinary local batch (the build
       needs only shapes and dtypes).
    2. The step function reduces the step's logs with ``strategy.reduce("MEAN", v, axis=0)``,
       which fails on the scalar loss/metric values ("Invalid reduction dimension 0 for
       input with 0 dimensions"). Here ``train_step`` and ``test_step`` return every log as a
       1-element vector, so that reduction is valid and yields the mean over workers: every
       worker then logs the same, global, numbers.

    Weights are synchronized by the strategy itself (gradients are all-reduced before each
    update); this patch changes no arithmetic. Batch-norm moving statistics stay per worker
    (each worker's ``BatchNormalization`` sees its own shard) unless the layers are built
    with ``synchronized=True``. Calling it twice is harmless; it does nothing unless
    ``is_multi_worker(strategy)``.

    Args:
        model: a compiled ``keras.Model`` created under ``strategy.scope()``.
        sample_batch: one ``(x, y)`` batch of the training data (tensors or arrays).
        strategy: the strategy (default: the model's).

    Returns:
        ``model`` (patched in place).

    Example:
        >>> patch_for_multi_worker(model, next(iter(train_ds)))  # doctest: +SKIP
    """
    import keras

    from keras_resnet_lab import _keras_compat

    strategy = strategy or getattr(model, "distribute_strategy", None)
    if not is_multi_worker(strategy) or getattr(model, "_multi_worker_patched", False):
        return model

    def symbolic_build(iterator=None, data_batch=None):
        with strategy.scope():
            _keras_compat.symbolic_build(model, sample_batch)

    def as_vectors(step):
        def wrapped(data):
            logs = step(data)
            return keras.tree.map_structure(
                lambda v: keras.ops.reshape(v, (1,)) if len(v.shape) == 0 else v, logs)

        return wrapped

    _keras_compat.replace_symbolic_build(model, symbolic_build)
    model.train_step = as_vectors(model.train_step)
    model.test_step = as_vectors(model.test_step)
    model._multi_worker_patched = True
    return model


# -- local multi-worker launch --------------------------------------------------------------
def free_ports(n, host="127.0.0.1"):
    """``n`` distinct TCP ports that are free on ``host`` right now.

    Each port is found by binding to port 0; the sockets stay open until all ``n`` are
    found, so the ports are distinct (another process could still take one before the
    workers bind it: a small race that the launcher reports as a failed worker).

    Example:
        >>> len(set(free_ports(3)))
        3
    """
    n = positive_int("n", n)
    sockets = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(workers, index):
    """The ``TF_CONFIG`` JSON string of worker ``index`` in a cluster of ``workers``.

    Args:
        workers: ``["host:port", ...]``, one entry per worker (worker 0 is the chief).
        index: this worker's position in ``workers``.

    Example:
        >>> json.loads(tf_config(["127.0.0.1:5000", "127.0.0.1:5001"], 1))["task"]
        {'type': 'worker', 'index': 1}
    """
    workers = list(workers)
    if not workers or not all(isinstance(w, str) and ":" in w for w in workers):
        raise ValueError(f"workers must be a non-empty list of 'host:port' strings, "
                         f"got workers={workers!r}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(workers):
        raise ValueError(f"index must be in [0, {len(workers)}), got index={index!r}")
    return json.dumps({"cluster": {"worker": workers},
                       "task": {"type": "worker", "index": index}})


def _stop(procs, grace_s=5.0):
    """SIGTERM the still-running processes (by their own pid), then SIGKILL after a grace
    period: a worker blocked in a collective or in the strategy constructor ignores SIGTERM."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def launch_local_workers(command, n, log_dir=None, env=None, timeout=None, host="127.0.0.1",
                         grace_s=5.0):
    """Run ``command`` as ``n`` worker processes of one multi-worker cluster on this machine.

    Every process gets its own ``TF_CONFIG`` (``tf_config``) for a cluster of ``n`` workers
    on free ports of ``host``. Worker 0 (the chief) inherits this process's stdout/stderr;
    the others write ``<log_dir>/worker-<i>.log`` (or are silenced without ``log_dir``).
    When one worker fails, or ``timeout`` seconds pass, the others are stopped (SIGTERM, then
    SIGKILL): a worker whose peer is gone would otherwise wait for it forever.

    Args:
        command: the argv list each worker runs (e.g. ``[sys.executable, "-m",
            "keras_resnet_lab.cli", "train", ..., "--strategy", "multiworker"]``).
        n: number of workers (positive int).
        log_dir: folder for the non-chief workers' logs.
        env: base environment (default ``os.environ``); ``TF_CONFIG`` is replaced.
        timeout: seconds before every worker is stopped (``None``: no limit).
        host: the address the workers listen on.
        grace_s: seconds between SIGTERM and SIGKILL when stopping workers.

    Returns:
        The list of exit codes, worker 0 first (negative: killed by that signal; workers
        stopped after another's failure or the timeout show their signal).

    Example:
        >>> launch_local_workers([sys.executable, "-c", "pass"], 2)
        [0, 0]
    """
    n = positive_int("n", n)
    if not command or not all(isinstance(c, str) for c in command):
        raise ValueError(f"command must be a non-empty list of strings, got command={command!r}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be positive or None, got timeout={timeout!r}")
    if not grace_s >= 0:
        raise ValueError(f"grace_s must be >= 0, got grace_s={grace_s!r}")
    workers = [f"{host}:{port}" for port in free_ports(n, host)]
    base = dict(os.environ if env is None else env)
    if log_dir is not None:
        os.makedirs(log_dir, exist_ok=True)
    procs, logs = [], []
    try:
        for i in range(n):
            worker_env = dict(base, TF_CONFIG=tf_config(workers, i))
            if i == 0:
                out = None
            elif log_dir is not None:
                out = open(os.path.join(log_dir, f"worker-{i}.log"), "w")  # noqa: SIM115
                logs.append(out)
            else:
                out = subprocess.DEVNULL
            procs.append(subprocess.Popen(command, env=worker_env, stdout=out,
                                          stderr=subprocess.STDOUT if out else None))
        deadline = None if timeout is None else time.monotonic() + timeout
        while any(p.poll() is None for p in procs):
            failed = any(p.poll() not in (None, 0) for p in procs)
            if failed or (deadline is not None and time.monotonic() > deadline):
                if not failed:
                    print(f"launch_local_workers: timeout after {timeout} s, stopping the "
                          "workers", file=sys.stderr)
                _stop(procs, grace_s)
                break
            time.sleep(0.1)
    except BaseException:
        _stop(procs, grace_s)
        raise
    finally:
        for log in logs:
            log.close()
    return [p.wait() for p in procs]
