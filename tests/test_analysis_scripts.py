"""The paper-reproduction scripts in ``--quick`` mode report their findings, from their numbers.

Each script runs in-process (``main(argv)``) and its ``results.json`` is checked: the finding
held, every criterion holds on the number it states, figures were written. The two scripts
that train four models (lesion, He) take about a minute each and are marked slow.
"""

import pytest
from _scripts import check_results, run_script


@pytest.mark.slow  # 30 s+ (suite time); shattering and refinement have library tests
def test_shattering_balduzzi_quick(tmp_path):
    results = run_script("shattering_balduzzi", tmp_path)
    check_results(results, tmp_path, "shattering_balduzzi")
    assert results["finding_held"] is True
    lag1 = results["numbers"]["lag1"]
    assert lag1["looks_linear"] == [1.0] * len(results["config"]["depths"])
    assert abs(lag1["plain_bn"][-1]) < 0.19 < lag1["residual_bn"][-1]


def test_paths_veit_quick(tmp_path):
    results = run_script("paths_veit", tmp_path)
    check_results(results, tmp_path, "paths_veit")
    assert results["finding_held"] is True
    numbers = results["numbers"]
    assert numbers["n_blocks"] == 18 and numbers["test_error"] < 0.15
    norms = [numbers["mean_norm_by_length"][str(k)] for k in (0, 9, 18)]
    assert norms[0] > norms[1] > norms[2]
    assert abs(numbers["resnet110_paths"]["share_of_lengths_5_to_17"] - 0.004537) < 1e-5


@pytest.mark.slow  # 30 s+ (suite time); shattering and refinement have library tests
def test_refinement_jastrzebski_quick(tmp_path):
    results = run_script("refinement_jastrzebski", tmp_path)
    check_results(results, tmp_path, "refinement_jastrzebski")
    assert results["finding_held"] is True
    curves = results["numbers"]["curves"]
    assert curves["epoch"] == list(range(results["config"]["epochs"] + 1))
    assert len(curves["cos"][0]) == len(results["numbers"]["blocks"]) == 18


@pytest.mark.slow
def test_lesion_veit_quick(tmp_path):
    results = run_script("lesion_veit", tmp_path)
    check_results(results, tmp_path, "lesion_veit")
    assert results["finding_held"] is True
    assert results["numbers"]["plain"]["mean_single_error"] > 0.7


@pytest.mark.slow
def test_plain_vs_residual_he_quick(tmp_path):
    results = run_script("plain_vs_residual_he", tmp_path)
    check_results(results, tmp_path, "plain_vs_residual_he")
    assert results["finding_held"] is True
    errors = results["numbers"]["final_train_error"]
    assert errors["plain38"] > errors["plain20"] and errors["resnet38"] < errors["plain38"]
