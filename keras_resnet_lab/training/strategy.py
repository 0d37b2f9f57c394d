"""Distribution strategies by name, and "am I the chief?" for writing results.

Build the model *and* compile it inside ``strategy.scope()`` (``fit`` does), so the same code
runs on one CPU, one GPU, all local GPUs (``"mirrored"``) or several machines
(``"multiworker"``).
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["STRATEGIES", "get_strategy", "is_chief", "worker_id"]

STRATEGIES = ("default", "mirrored", "multiworker")


def get_strategy(name=None):
    """A ``tf.distribute.Strategy`` by name.

    - ``None`` / ``"default"``: ``tf.distribute.get_strategy()`` -- the strategy of the
      enclosing ``scope()`` if any, else TensorFlow's default (no distribution: one device,
      the first GPU if there is one, else the CPU).
    - ``"mirrored"``: ``tf.distribute.MirroredStrategy()``: synchronous data parallelism over
      all local GPUs (one replica on the CPU when there is no GPU). The dataset batch is the
      *global* batch, split across replicas.
    - ``"multiworker"``: ``tf.distribute.MultiWorkerMirroredStrategy()``: synchronous data
      parallelism across machines. It reads the cluster from the ``TF_CONFIG`` environment
      variable (JSON: ``{"cluster": {"worker": ["host1:port", "host2:port"]}, "task":
      {"type": "worker", "index": 0}}``), which must be set on every worker *before* this call;
      without ``TF_CONFIG`` it is a single local worker. The constructor blocks until all
      workers have started (a worker whose peer never starts hangs here and ignores SIGTERM:
      bound it with ``timeout -k``). Known: Keras 3 ``model.fit`` under this strategy fails as
      released (keras-team/keras#20585); ``fit`` of this package is designed for it but not yet
      tested with it.

    Args:
        name: one of ``STRATEGIES`` (case-insensitive) or ``None``.

    Example:
        >>> get_strategy("default").num_replicas_in_sync
        1
    """
    if name is None:
        name = "default"
    if not isinstance(name, str) or name.lower() not in STRATEGIES:
        raise ValueError(f"name must be one of {STRATEGIES} or None, got name={name!r}")
    name = name.lower()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
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
