"""Running a paper-reproduction script in-process and checking its results.json.

Used by the script tests: ``results = run_script(name, tmp_path)`` runs
``benchmarks/NAME.py --quick --quiet --out tmp_path`` and returns its results; ``check_results``
recomputes every criterion's verdict from its reported number.
"""

import importlib.util
import json
import operator
import os

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "benchmarks")
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


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


def check_results(results, out, script):
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
