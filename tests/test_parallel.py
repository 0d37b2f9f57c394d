"""keras_resnet_lab.parallel: jobs run in order in this process or in spawned single-threaded
worker processes, their arguments checked, a failed job named."""

import os

import pytest

from keras_resnet_lab.parallel import Job, JobError, run_jobs, worker_environment


def test_run_jobs_in_process_keeps_order_reports_progress_and_names_a_failed_job():
    seen = []
    jobs = [Job("statistics:fmean", {"data": [1, 2, 3]}, "first"),
            Job("statistics:fmean", {"data": [4, 5]}),
            Job("statistics:median", {"data": [3, 1, 2]}, "third")]
    assert run_jobs(jobs, processes=1, progress=lambda *a: seen.append(a)) == [2.0, 4.5, 2]
    assert seen == [("first", 1, 3), ("statistics:fmean", 2, 3), ("third", 3, 3)]
    assert jobs[1].name == "statistics:fmean" and run_jobs([], processes=1) == []
    bad = Job("keras_resnet_lab.analysis.comparisons:run_seed", {"name": "nope", "seed": 0},
              "nope seed 0")
    with pytest.raises(JobError, match=r"job 'nope seed 0' \(keras_resnet_lab\.analysis\."
                                       r"comparisons:run_seed\) failed: ValueError: `name`") as e:
        run_jobs([jobs[0], bad], processes=1)
    assert e.value.job is bad and isinstance(e.value.__cause__, ValueError)


def test_job_and_run_jobs_arguments_are_checked():
    for function in ("statistics.fmean", "statistics:", ":fmean", 3, "a:b:c"):
        with pytest.raises(ValueError, match="`function` must be 'module:function'"):
            Job(function)
    with pytest.raises(ValueError, match="`kwargs`"):
        Job("statistics:fmean", [3, 4])
    with pytest.raises(ValueError, match="`name`"):
        Job("statistics:fmean", {}, 7)
    with pytest.raises(ValueError, match="`jobs`"):
        run_jobs(Job("statistics:fmean"))
    with pytest.raises(ValueError, match="`jobs` must hold Job"):
        run_jobs(["statistics:fmean"])
    with pytest.raises(ValueError, match="`processes`"):
        run_jobs([], processes=0)
    with pytest.raises(ValueError, match="`progress`"):
        run_jobs([], progress="yes")
    env = worker_environment({"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert env == {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                   "OMP_NUM_THREADS": "1"}
    assert worker_environment({})["TF_CPP_MIN_LOG_LEVEL"] == "2"


def test_run_jobs_in_two_worker_processes():
    """Spawned single-threaded workers: results in job order (a picklable result object
    among them), the environment set in the workers only, a failed job named."""
    before = {k: os.environ.get(k) for k in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS")}
    seen = []
    jobs = [Job("keras_resnet_lab.analysis.comparisons:run_seed",
                {"name": "hessian", "seed": 3, "settings": {"max_depth": 4}}, "hessian 3"),
            Job("os:getenv", {"key": "TF_NUM_INTRAOP_THREADS"}, "intra"),
            Job("os:getenv", {"key": "OMP_NUM_THREADS"}, "omp"),
            Job("os:getpid", {}, "pid")]
    hessian, intra, omp, pid = run_jobs(jobs, processes=2,
                                        progress=lambda *a: seen.append(a))
    assert hessian.seed == 3 and hessian.depths["2"] == [2, 4]
    assert (intra, omp) == ("1", "1") and pid != os.getpid()
    assert sorted(s[0] for s in seen) == sorted(j.name for j in jobs)
    assert [s[1:] for s in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert {k: os.environ.get(k) for k in before} == before  # the parent's is untouched
    with pytest.raises(JobError, match=r"job 'mean of nothing' \(statistics:fmean\) failed: "
                                       "StatisticsError: fmean requires"):
        run_jobs([Job("statistics:fmean", {"data": [1]}, "ok")] * 2
                 + [Job("statistics:fmean", {"data": []}, "mean of nothing")], processes=2)
