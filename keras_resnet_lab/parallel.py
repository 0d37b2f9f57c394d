"""Independent jobs (one seed of an experiment, one task) run in worker processes.

:func:`run_jobs` runs a list of :class:`Job` in a ``concurrent.futures.ProcessPoolExecutor``
with the ``"spawn"`` start method (a fresh interpreter per worker: no TensorFlow state
copied from the parent). Each worker runs TensorFlow on one thread
(``TF_NUM_INTRAOP_THREADS``, ``TF_NUM_INTEROP_THREADS`` and ``OMP_NUM_THREADS`` are 1, and
``TF_CPP_MIN_LOG_LEVEL`` is 2 unless set): the environment is in place when the worker's
interpreter starts, before TensorFlow or NumPy are imported, and the worker initializer sets
it again. Small networks gain more from one single-threaded process per core than from one
process using every core: their operations are too small to keep several threads busy (the
measurement is in benchmarks/results/timings_behind_comments.md).

A job names its function as ``"module:function"`` (so the job pickles as text, and the worker
imports the function itself), its keyword arguments and a name for messages. Results must be
picklable: dataclass results with numbers, lists and NumPy arrays, never Keras objects.

Example:
    >>> jobs = [Job("statistics:fmean", {"data": [1, 2, 3]}, "first"),
    ...         Job("statistics:fmean", {"data": [4, 5]}, "second")]
    >>> run_jobs(jobs, processes=1)
    [2.0, 4.5]
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import importlib
import multiprocessing
import os

from keras_resnet_lab._checks import positive_int, shown

#: The environment of every worker: TensorFlow (and OpenMP) on one thread.
SINGLE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                 "OMP_NUM_THREADS": "1"}
#: Set in the workers only when the parent has not set them.
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2"}


class JobError(RuntimeError):
    """A job failed; ``job`` is the :class:`Job`, the cause is chained (``__cause__``)."""

    def __init__(self, job, message):
        super().__init__(message)
        self.job = job


@dataclasses.dataclass(frozen=True)
class Job:
    """One independent piece of work: ``function(**kwargs)``.

    Attributes:
        function: ``"package.module:function"``, imported where the job runs.
        kwargs: keyword arguments (picklable).
        name: what messages and progress call the job (default: the function).

    Example:
        >>> Job("keras_resnet_lab.analysis.comparisons:run_seed",
        ...     {"name": "scaling", "seed": 1}, "scaling seed 1").name
        'scaling seed 1'
    """

    function: str
    kwargs: dict = dataclasses.field(default_factory=dict)
    name: str = ""

    def __post_init__(self):
        module, _, attribute = (self.function.partition(":") if isinstance(self.function, str)
                                else ("", "", ""))
        if not module or not attribute or ":" in attribute:
            raise ValueError("`function` must be 'module:function' (e.g. "
                             f"'keras_resnet_lab.analysis.scaling:compare_residual_scales'), "
                             f"got {shown(self.function)}.")
        if not isinstance(self.kwargs, dict) or not all(isinstance(k, str) for k in self.kwargs):
            raise ValueError(f"`kwargs` must be a dict of keyword arguments, got "
                             f"{shown(self.kwargs)}.")
        if not isinstance(self.name, str):
            raise ValueError(f"`name` must be a string, got {shown(self.name)}.")
        if not self.name:
            object.__setattr__(self, "name", self.function)

    def __call__(self):
        """Import the function and run it."""
        module, _, attribute = self.function.partition(":")
        function = getattr(importlib.import_module(module), attribute)
        return function(**self.kwargs)


def default_processes():
    """``min(2, os.cpu_count())``: the default number of worker processes."""
    return max(1, min(2, os.cpu_count() or 1))


def worker_environment(environ=None):
    """The variables a worker sets: :data:`SINGLE_THREAD`, and :data:`QUIET` where
    ``environ`` (default ``os.environ``) does not set them."""
    environ = os.environ if environ is None else environ
    env = dict(SINGLE_THREAD)
    env.update({k: v for k, v in QUIET.items() if k not in environ})
    return env


def _initialize(env):
    """The worker initializer: the single-threaded environment (already inherited from the
    parent at the worker's start, see :func:`_environment`; set again for safety), then
    TensorFlow and this package loaded quietly (the worker imported the package with its
    heavy imports deferred, so that TensorFlow's start-up logs can be silenced)."""
    from keras_resnet_lab import DEFER_IMPORTS
    from keras_resnet_lab._startup import load_library

    os.environ.update({k: v for k, v in env.items() if k != DEFER_IMPORTS})
    os.environ.pop(DEFER_IMPORTS, None)
    load_library()


@contextlib.contextmanager
def _environment(env):
    """``env`` in ``os.environ`` while the workers start (they inherit it from their first
    instruction, before any import), then the parent's own values again."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run(job):
    return job()


def _failed(job, error):
    hint = ""
    if isinstance(error, concurrent.futures.process.BrokenProcessPool):
        hint = (" (a worker process died: out of memory, killed, or started from a script "
                "whose main code is not under `if __name__ == \"__main__\":`)")
    return JobError(job, f"job {job.name!r} ({job.function}) failed: "
                         f"{type(error).__name__}: {error}{hint}")


def run_jobs(jobs, processes=None, progress=None):
    """Run independent jobs, in worker processes or in this one; results in job order.

    Args:
        jobs: a list of :class:`Job`.
        processes: worker processes (default :func:`default_processes`, never more than
            the jobs); ``1`` runs the jobs here, one after the other, in order (no worker,
            this process's threads and environment).
        progress: None, or ``progress(name, done, total)`` called (in this process) when a
            job finishes: its name, the jobs finished so far and the number of jobs.

    A script that runs jobs in workers must keep its main code under ``if __name__ ==
    "__main__":``: a spawned worker imports the script's module as ``__mp_main__``.

    Returns:
        The jobs' return values, in the order of ``jobs``.

    Raises:
        JobError: a job raised (or its worker died); the message names the job and the
            original error is chained. The jobs not yet started are cancelled.

    Example:
        >>> run_jobs([Job("statistics:median", {"data": [3, 1, 2]})], processes=1)
        [2]
    """
    if isinstance(jobs, Job) or not hasattr(jobs, "__iter__"):
        raise ValueError(f"`jobs` must be a list of Job, got {shown(jobs)}.")
    jobs = list(jobs)
    bad = [j for j in jobs if not isinstance(j, Job)]
    if bad:
        raise ValueError(f"`jobs` must hold Job objects, got {shown(bad[0])}.")
    processes = default_processes() if processes is None else positive_int("processes",
                                                                           processes)
    if progress is not None and not callable(progress):
        raise ValueError(f"`progress` must be None or a callable(name, done, total), got "
                         f"{shown(progress)}.")
    total = len(jobs)
    if not jobs:
        return []
    if processes == 1:
        results = []
        for done, job in enumerate(jobs, 1):
            try:
                results.append(job())
            except Exception as error:
                raise _failed(job, error) from error
            if progress is not None:
                progress(job.name, done, total)
        return results
    return _in_pool(jobs, min(processes, total), progress)


def _in_pool(jobs, processes, progress):
    env = worker_environment()
    context = multiprocessing.get_context("spawn")
    results = [None] * len(jobs)
    executor = concurrent.futures.ProcessPoolExecutor(
        max_workers=processes, mp_context=context, initializer=_initialize, initargs=(env,))
    from keras_resnet_lab import DEFER_IMPORTS

    try:
        # The workers start at the submits and inherit this environment from their first
        # instruction: single-threaded, and importing this package light (see _initialize).
        with _environment({**env, DEFER_IMPORTS: "1"}):
            futures = {executor.submit(_run, job): i for i, job in enumerate(jobs)}
        done = 0
        for future in concurrent.futures.as_completed(futures):
            i = futures[future]
            try:
                results[i] = future.result()
            except Exception as error:
                raise _failed(jobs[i], error) from error
            done += 1
            if progress is not None:
                progress(jobs[i].name, done, len(jobs))
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return results
