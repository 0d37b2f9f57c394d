"""The findings registry: one rule per finding, three verdicts from intervals, and no verdict
computed anywhere else (keras_resnet_lab.findings)."""

import json
import math
import pathlib
import re

import numpy as np
import pytest

from keras_resnet_lab.findings import (
    FINDINGS,
    HELD,
    INCONCLUSIVE,
    NOT_HELD,
    VERDICTS,
    Estimate,
    assess,
    bootstrap,
    from_dict,
    missing,
    over_range,
    over_seeds,
    tally,
)
from keras_resnet_lab.findings.registry import findings_table
from keras_resnet_lab.findings.verdict import combine, judge

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: Every finding the issue names, and no other.
KEYS = {"veit_lesion", "veit_k_deletion", "veit_reorder", "veit_path_gradient",
        "jastrzebski_refinement", "jastrzebski_first_block", "jastrzebski_sharing",
        "he_degradation", "greff_estimation", "srivastava_depth", "srivastava_gates",
        "abdi_multires", "szegedy_scaling", "balduzzi_shattering", "balduzzi_looks_linear",
        "li_hessian", "chu_filters", "kornblith_cka"}


def interval(value, low, high):
    return Estimate(value, low, high, 3, "test")


@pytest.mark.parametrize("comparison, threshold, low, high, verdict", [
    ("<=", 2.0, 0.5, 2.0, HELD),           # the upper end on the threshold clears "<="
    ("<=", 2.0, 0.5, 2.0001, INCONCLUSIVE),
    ("<=", 2.0, 2.0001, 3.0, NOT_HELD),
    ("<=", 2.0, 2.0, 3.0, INCONCLUSIVE),   # the lower end on it does not clear the other side
    ("<", 1.0, 0.2, 0.9999, HELD),
    ("<", 1.0, 0.2, 1.0, INCONCLUSIVE),    # "<" needs the whole interval strictly below
    ("<", 1.0, 1.0, 1.2, NOT_HELD),
    (">", 0.0, 0.0, 0.3, INCONCLUSIVE),
    (">", 0.0, 1e-9, 0.3, HELD),
    (">", 0.0, -0.3, 0.0, NOT_HELD),
    (">=", -1.0, -1.0, 2.0, HELD),
    (">=", -1.0, -3.0, -1.0001, NOT_HELD),
])
def test_three_verdicts_at_their_boundaries(comparison, threshold, low, high, verdict):
    assert judge(comparison, threshold, interval((low + high) / 2, low, high)) == verdict


def test_no_interval_is_inconclusive():
    assert judge(">", 0.0, over_seeds([5.0])) == INCONCLUSIVE  # one seed: no interval
    assert judge(">", 0.0, missing("not measured")) == INCONCLUSIVE
    assert judge(">", 0.0, None) == INCONCLUSIVE
    with pytest.raises(ValueError, match="comparison"):
        judge("==", 0.0, interval(1, 0, 2))


def test_combining_criteria_and_preconditions():
    assert combine([HELD, HELD]) == HELD
    assert combine([HELD, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([INCONCLUSIVE, NOT_HELD]) == NOT_HELD
    assert combine([]) == INCONCLUSIVE
    estimates = {"median_rise": interval(0.5, 0.2, 0.9), "plain_error": interval(88, 80, 90),
                 "plain_intact_error": interval(40, 30, 45)}
    assert assess("veit_lesion", estimates).verdict == HELD
    # an untrained plain twin: its deletions prove nothing, whatever they give
    estimates["plain_intact_error"] = interval(89, 88, 90)
    a = assess("veit_lesion", estimates)
    assert a.verdict == INCONCLUSIVE and a.verdicts["median_rise"] == HELD
    assert "Cannot be tested here" in a.describe()
    # a claim that fails on a working twin is not held
    estimates["plain_intact_error"] = interval(10, 5, 15)
    estimates["median_rise"] = interval(30, 20, 40)
    assert assess("veit_lesion", estimates).verdict == NOT_HELD


def test_seed_intervals_and_ranges():
    e = over_seeds([1.0, 2.0, 3.0])
    t = 4.302652729911275  # Student t, 2 degrees of freedom, 97.5%
    assert e.value == 2.0 and e.n == 3
    assert e.high - e.value == pytest.approx(t * 1.0 / math.sqrt(3))
    assert over_seeds([1.0, float("nan"), 3.0]).n == 2
    r = over_range([3e-12, 1e-12, 2e-12])
    assert (r.value, r.low, r.high) == (2e-12, 1e-12, 3e-12)


def test_bootstrap_covers_the_mean_and_resamples_within_groups():
    x = np.random.default_rng(1).normal(0.3, 1.0, 400)
    e = bootstrap(lambda i: float(x[i].mean()), len(x), seed=0)
    assert e.low < 0.3 < e.high and e.high - e.low < 0.3
    # resampling within groups keeps every group's size: a statistic of the group counts
    groups = np.repeat([0, 1, 2], [5, 10, 20])
    sizes = bootstrap(lambda i: float(np.sum(groups[i] == 2)), len(groups), groups=groups)
    assert sizes.low == sizes.high == 20
    # two independent index sets
    a, b = np.arange(50.0), np.arange(30.0)
    e = bootstrap(lambda i, j: float(a[i].mean() - b[j].mean()), (50, 30), seed=2)
    assert e.value == pytest.approx(10.0) and e.low < 10 < e.high
    assert not bootstrap(lambda i: 0.0, 1).has_interval


def test_registry_entries_are_complete():
    assert set(FINDINGS) == KEYS
    for f in FINDINGS.values():
        assert f.claim.endswith(".") and f.paper and re.fullmatch(r"\d{4}\.\d{5}", f.arxiv)
        assert f.criteria and len({c.key for c in f.criteria}) == len(f.criteria)
        for c in f.criteria:
            assert c.comparison in ("<", "<=", ">", ">=") and math.isfinite(c.threshold)
            assert c.statistic and c.meaning and c.unit
        assert f.uncertainty and f.measured_on


def test_assessments_round_trip_through_json_and_tally():
    a = assess("abdi_multires", {"accuracy_gap": over_seeds([2.0, 1.5, 2.5])}, seeds=(0, 1, 2))
    assert a.verdict == HELD
    data = a.to_dict()
    assert data["criteria"][0]["threshold"] == -1.0 and data["seeds"] == [0, 1, 2]
    assert data["paper_number"].startswith("CIFAR-10")
    again = from_dict(data)
    assert again.verdict == a.verdict and again.describe() == a.describe()
    assert tally([HELD, HELD, INCONCLUSIVE]) == {HELD: 2, NOT_HELD: 0, INCONCLUSIVE: 1}
    with pytest.raises(ValueError, match="judged on the criteria"):
        assess("abdi_multires", {})


def test_the_sentences_state_the_numbers_and_the_rule():
    a = assess("he_degradation", {"plain_rise": over_seeds([30.0, 35.0, 40.0]),
                                  "residual_rise": over_seeds([-0.5, 1.2, 0.4])})
    text = a.describe()
    assert "35.0 points (95% interval" in text and "the claim needs > 0.0 points" in text
    assert a.verdicts == {"plain_rise": HELD, "residual_rise": INCONCLUSIVE}
    assert text.endswith("Verdict: inconclusive.")


def test_readme_findings_table_is_generated_from_the_registry():
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- findings-table -->\n(.*?)<!-- /findings-table -->", readme, re.S)
    assert match, "README.md lacks the generated findings table"
    assert match.group(1) == findings_table(), (
        "README's findings table differs from the registry: paste "
        "keras_resnet_lab.findings.registry.findings_table()")


def test_readme_atlas_section_is_the_committed_atlas():
    """The README says where each finding shows from the committed atlas's own table."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- findings-atlas -->\n(.*?)<!-- /findings-atlas -->", readme, re.S)
    assert match, "README.md lacks the findings atlas section"
    atlas = ROOT / "benchmarks" / "results" / "findings_atlas"
    assert match.group(1) == (atlas / "atlas.md").read_text(), (
        "README's atlas section differs from benchmarks/results/findings_atlas/atlas.md: paste it")
    verdicts = json.loads((atlas / "atlas.json").read_text())["verdicts"]
    assert set(verdicts) <= set(FINDINGS) and all(
        v in VERDICTS for by_cond in verdicts.values() for v in by_cond.values())


#: What a verdict computed outside the registry looks like in source code.
VERDICT_CODE = re.compile(r"\bfinding_held\b|(?<![.\w])criterion\(|\bheld\s*=[^=]|[\"']held[\"']|"
                          r"\bverdict\s*=\s*[^=]*\b(?:True|False)\b")


def test_no_verdict_is_computed_outside_the_registry():
    offenders = []
    sources = [p for p in (ROOT / "keras_resnet_lab").rglob("*.py")
               if "findings" not in p.parts] + list((ROOT / "benchmarks").glob("*.py"))
    for path in sources:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if VERDICT_CODE.search(line.split("#")[0]):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == [], "verdicts must come from keras_resnet_lab.findings:\n" + "\n".join(
        offenders)


def test_lab_help_lists_every_finding():
    from keras_resnet_lab.commands.lab import DESCRIPTION

    assert [key for key in FINDINGS if key not in DESCRIPTION] == []


@pytest.mark.parametrize("line, caught", [
    ("    held = mean_plain > 2 * damage", True),
    ('    out["finding_held"] = all(ok)', True),
    ('    criteria = [criterion("gap", 0.3, ">=", 0.2, "better")]', True),
    ('    colors = {"held": "green"}', True),
    ("    verdict = score > 0.1 and True", True),
    ('    white = finding("x").criterion("plain_lag1").threshold', False),
    ("    if a.verdicts[c.key] == HELD:", False),
])
def test_the_scan_catches_verdicts_computed_by_hand(line, caught):
    assert bool(VERDICT_CODE.search(line)) is caught


def _atlas_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "findings_atlas", ROOT / "benchmarks" / "findings_atlas.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_atlas_judges_every_resnet_lesion_against_the_plain_network_that_trains():
    """As in the lab: the depth-56 ResNet's lesions are compared with plain-20 (same recipe and
    seeds), not with its own plain twin, which degrades (He et al.)."""
    atlas_module = _atlas_module()

    def run(median_rise, plain_error, plain_intact, train_plain, train_res):
        lesion = {"key": "veit_lesion", "criteria": [
            {"key": "median_rise", "estimate": median_rise},
            {"key": "plain_error", "estimate": plain_error},
            {"key": "plain_intact_error", "estimate": plain_intact}]}
        return {"train_error": {"plain": train_plain, "residual": train_res},
                "assessments": [lesion]}

    seeds = (0, 1, 2)
    runs = {}
    for s in seeds:
        runs[(20, "sgd", s)] = run(9.0 + s, 88.0 + s, 2.0 + 0.1 * s, 0.0, 0.0)
        # the plain-56 twin does not work: 45-55% intact error
        runs[(56, "sgd", s)] = run(0.5 + 0.1 * s, 85.0, 45.0 + 5 * s, 0.40 + 0.01 * s, 0.0)
    cfg = dict(depths=(20, 56), recipes=("sgd",), seeds=seeds)
    atlas = atlas_module.aggregate(runs, cfg)
    deep = atlas["veit_lesion"]["depth 56 SGD"]
    assert deep.estimates["plain_intact_error"].value == pytest.approx(2.1)
    assert deep.estimates["plain_error"].value == pytest.approx(89.0)
    assert deep.estimates["median_rise"].value == pytest.approx(0.6)
    assert deep.verdict == HELD and "plain-20" in deep.notes
    assert atlas["veit_lesion"]["depth 20 SGD"].verdicts["median_rise"] == NOT_HELD
    assert atlas["he_degradation"]["depth 56 SGD"].estimates["plain_rise"].value == \
        pytest.approx(41.0)
    # without the reference depth for every seed the plain criteria are missing: never held
    del runs[(20, "sgd", 1)]
    partial = atlas_module.aggregate(runs, cfg)
    assert "depth 20 SGD" not in partial["veit_lesion"]
    assert partial["veit_lesion"]["depth 56 SGD"].verdict == INCONCLUSIVE
    assert not partial["veit_lesion"]["depth 56 SGD"].estimates["plain_error"].has_interval
