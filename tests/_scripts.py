"""Running a paper-reproduction script in-process and checking its results.json.

Used by the script tests: ``results = run_script(name, tmp_path)`` runs
``benchmarks/NAME.py --quick --quiet --out tmp_path`` and returns its results; ``check_results``
judges every reported finding again with the registry's rule and compares the verdicts;
``one_seed_round_trip`` checks the files of one seed's comparison result.
"""

import importlib.util
import json
import os

from keras_resnet_lab.findings import FINDINGS, from_dict, tally

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "benchmarks")


def load_script(name):
    """The module of ``benchmarks/NAME.py``, imported from its file."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(BENCHMARKS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name, out):
    module = load_script(name)
    assert module.main(["--quick", "--quiet", "--out", str(out)]) == 0
    with open(out / "results.json") as f:
        return json.load(f)


def check_results(results, out, script, keys=None):
    """Check ``results`` of ``script``: its findings (registry ``keys`` if given) are judged
    by the registry's rule on their reported estimates and intervals; figures are PNG."""
    assert results["script"] == script and results["mode"] == "quick"
    assert results["environment"]["tensorflow"] and results["runtime_s"] > 0
    assert results["findings"], "a reproduction tests at least one finding"
    if keys is not None:
        assert [f["key"] for f in results["findings"]] == list(keys)
    for data in results["findings"]:
        assert data["key"] in FINDINGS
        # The verdict is judged again from the reported numbers, not taken on trust.
        assert from_dict(data).verdict == data["verdict"], data
        for c in data["criteria"]:
            assert c["threshold"] == FINDINGS[data["key"]].criterion(c["key"]).threshold
    assert results["tally"] == tally(f["verdict"] for f in results["findings"])
    for figure in results["figures"]:
        with open(out / figure, "rb") as f:
            assert f.read(4) == b"\x89PNG"
    return {f["key"]: f for f in results["findings"]}


def one_seed_round_trip(result, tmp_path):
    """The result's JSON (numbers only: the findings are judged over seeds by
    run_comparison) and its figure."""
    path = result.to_json(tmp_path / "result.json")
    with open(path) as f:
        loaded = json.load(f)
    for key in ("finding", "finding_held", "criteria", "description"):
        assert key not in loaded  # no verdict on one seed
    result.plot(tmp_path / "figure.png")
    assert (tmp_path / "figure.png").read_bytes()[:4] == b"\x89PNG"
    return loaded
