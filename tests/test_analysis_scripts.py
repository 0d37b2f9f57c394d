"""The paper-reproduction scripts in ``--quick`` mode report their findings, from their numbers.

Each script runs in-process (``main(argv)``) and its ``results.json`` is checked: the finding
held, every criterion holds on the number it states, figures were written. The two scripts
that train four models (lesion, He) take about a minute each and are marked slow.
"""

import importlib.util
import json
import operator
import os

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "benchmarks")
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _run(name, out):
    spec = importlib.util.spec_from_file_location(name, os.path.join(BENCHMARKS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--quiet", "--out", str(out)]) == 0
    with open(out / "results.json") as f:
        return json.load(f)


def _check(results, out, script):
    assert results["script"] == script and results["mode"] == "quick"
    assert results["environment"]["tensorflow"] and results["runtime_s"] > 0
    assert results["criteria"], "a finding needs criteria"
    for c in results["criteria"]:
        # The verdict is recomputed from the reported number, not taken on trust.
        assert c["value"] is not None, c
        assert OPS[c["comparison"]](c["value"], c["threshold"]) == c["held"], c
    assert results["finding_held"] == all(c["held"] for c in results["criteria"])
    for figure in results["figures"]:
        with open(out / figure, "rb") as f:
            assert f.read(4) == b"\x89PNG"


def test_shattering_balduzzi_quick(tmp_path):
    results = _run("shattering_balduzzi", tmp_path)
    _check(results, tmp_path, "shattering_balduzzi")
    assert results["finding_held"] is True
    lag1 = results["numbers"]["lag1"]
    assert lag1["looks_linear"] == [1.0] * len(results["config"]["depths"])
    assert abs(lag1["plain_bn"][-1]) < 0.19 < lag1["residual_bn"][-1]


def test_paths_veit_quick(tmp_path):
    results = _run("paths_veit", tmp_path)
    _check(results, tmp_path, "paths_veit")
    assert results["finding_held"] is True
    numbers = results["numbers"]
    assert numbers["n_blocks"] == 18 and numbers["test_error"] < 0.15
    norms = [numbers["mean_norm_by_length"][str(k)] for k in (0, 9, 18)]
    assert norms[0] > norms[1] > norms[2]
    assert abs(numbers["resnet110_paths"]["share_of_lengths_5_to_17"] - 0.004537) < 1e-5


def test_refinement_jastrzebski_quick(tmp_path):
    results = _run("refinement_jastrzebski", tmp_path)
    _check(results, tmp_path, "refinement_jastrzebski")
    assert results["finding_held"] is True
    curves = results["numbers"]["curves"]
    assert curves["epoch"] == list(range(results["config"]["epochs"] + 1))
    assert len(curves["cos"][0]) == len(results["numbers"]["blocks"]) == 18


@pytest.mark.slow
def test_lesion_veit_quick(tmp_path):
    results = _run("lesion_veit", tmp_path)
    _check(results, tmp_path, "lesion_veit")
    assert results["finding_held"] is True
    assert results["numbers"]["plain"]["mean_single_error"] > 0.7


@pytest.mark.slow
def test_plain_vs_residual_he_quick(tmp_path):
    results = _run("plain_vs_residual_he", tmp_path)
    _check(results, tmp_path, "plain_vs_residual_he")
    assert results["finding_held"] is True
    errors = results["numbers"]["final_train_error"]
    assert errors["plain38"] > errors["plain20"] and errors["resnet38"] < errors["plain38"]
