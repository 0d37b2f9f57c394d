"""analysis/comparisons.py: each experiment's per-seed statistics in the registry's keys, and
the judgement over seeds (SeededComparison, run_comparison)."""

import json
import math

import pytest

from keras_resnet_lab.analysis.comparisons import (
    DEFAULTS,
    SMOKE,
    SeededComparison,
    run_comparison,
    run_seed,
    settings_of,
)
from keras_resnet_lab.catalog import COMPARISONS
from keras_resnet_lab.findings import FINDINGS, HELD, INCONCLUSIVE, NOT_HELD

# -- each experiment's statistics ---------------------------------------------------------------

#: The findings each experiment measures.
MEASURES = {
    "highway": {"srivastava_depth", "srivastava_gates"},
    "scaling": {"szegedy_scaling"},
    "sharing": {"jastrzebski_sharing"},
    "looks_linear": {"balduzzi_looks_linear"},
    "multires": {"abdi_multires"},
    "depth": {"he_degradation"},
    "shattering": {"balduzzi_shattering"},
    "hessian": {"li_hessian"},
}

#: Even smaller than SMOKE: only the wiring (data, seed, keys) is tested here.
TINY = {
    "highway": dict(depths=(2, 3), units=8, epochs=1),
    "scaling": dict(blocks=3, width=8, epochs=1),
    "sharing": dict(steps=2, width=4, epochs=1),
    "looks_linear": dict(blocks=2, width=8, epochs=1),
    "multires": dict(SMOKE["multires"], widths=(4, 4), epochs=1),
    "depth": dict(depths=(8, 14), widths=(4, 8, 8), epochs=2),
    "shattering": dict(kinds=("plain_bn", "residual_bn"), depths=(1, 3), width=16),
    "hessian": dict(max_depth=3, dim=2),
}


def test_the_catalog_and_the_settings_cover_the_same_experiments():
    assert set(MEASURES) == set(COMPARISONS) == set(DEFAULTS) == set(SMOKE) == set(TINY)
    for keys in MEASURES.values():
        assert keys <= set(FINDINGS)
    assert settings_of("scaling", epochs=3) == {"epochs": 3}
    assert settings_of("depth", smoke=True) == SMOKE["depth"]
    with pytest.raises(ValueError, match="`epochs` applies to the training comparisons"):
        settings_of("hessian", epochs=2)
    with pytest.raises(ValueError, match="`name` must be one of"):
        settings_of("degradation")


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_statistics_have_the_registry_keys_and_finite_values(name):
    result = run_seed(name, 1, TINY[name])
    stats = result.statistics()
    assert set(stats) == MEASURES[name]
    for key, values in stats.items():
        assert list(values) == [c.key for c in FINDINGS[key].criteria]
        assert all(isinstance(v, float) and math.isfinite(v) for v in values.values()), stats
    assert set(result.notes()) == set(stats) and all(result.notes().values())
    comparison = SeededComparison.from_runs(name, [1], [result], TINY[name])
    assert [a.key for a in comparison.assessments()] == list(stats)
    if comparison.interval == "seeds":  # one seed: no interval, nothing can be decided
        assert all(a.verdict == INCONCLUSIVE for a in comparison.assessments())
    else:  # an exact computation: its one task is judged (its range is its value)
        assert all(e.n == 1 for a in comparison.assessments() for e in a.estimates.values())
    json.dumps(comparison.to_dict(), allow_nan=False)


# -- judging over seeds -------------------------------------------------------------------------

def _scaling(per_seed, runs=None):
    seeds = list(range(len(per_seed)))
    return SeededComparison(
        name="scaling", seeds=seeds, runs=runs or [{"seed": s} for s in seeds],
        settings={"blocks": 30},
        per_seed=[{"szegedy_scaling": {"growth_ratio": g, "scaled_accuracy": a}}
                  for g, a in per_seed], notes={"szegedy_scaling": "hand-made"})


def test_assessments_over_seeds_give_the_interval_verdicts(tmp_path):
    # Far on the claim's side in every seed: held.
    held = _scaling([(3.0, 90.0), (3.2, 92.0), (2.9, 91.0)]).assessments()
    assert [a.verdict for a in held] == [HELD]
    growth = held[0].estimates["growth_ratio"]
    assert growth.value == pytest.approx(3.0333333) and growth.n == 3
    assert growth.samples == (3.0, 3.2, 2.9) and growth.low > 1.0
    assert held[0].seeds == (0, 1, 2) and held[0].notes == "hand-made"
    # Straddling the threshold (growth 1): inconclusive.
    straddle = _scaling([(0.5, 90.0), (2.0, 92.0), (1.2, 91.0)]).assessments()[0]
    assert straddle.verdicts == {"growth_ratio": INCONCLUSIVE, "scaled_accuracy": HELD}
    assert straddle.verdict == INCONCLUSIVE
    assert straddle.estimates["growth_ratio"].low < 1.0 < straddle.estimates["growth_ratio"].high
    # Far on the wrong side: not held, whatever the other criterion.
    wrong = _scaling([(3.0, 10.0), (3.2, 11.0), (2.9, 9.0)]).assessments()[0]
    assert wrong.verdicts["scaled_accuracy"] == NOT_HELD and wrong.verdict == NOT_HELD
    # A seed without a value (NaN: diverged) is left out of the interval.
    nan = _scaling([(3.0, float("nan")), (3.2, 92.0), (2.9, 91.0)]).assessments()[0]
    assert nan.estimates["scaled_accuracy"].n == 2


def test_seeded_comparison_json_round_trip_description_and_figure(tmp_path):
    comparison = _scaling([(3.0, 90.0), (3.2, 92.0), (2.9, 91.0)])
    path = comparison.to_json(tmp_path / "scaling.json")
    with open(path) as f:
        saved = json.load(f)
    assert saved["runs"] == [{"seed": 0}, {"seed": 1}, {"seed": 2}]
    assert saved["seeds"] == [0, 1, 2] and saved["interval"] == "seeds"
    assert [a["key"] for a in saved["assessments"]] == ["szegedy_scaling"]
    a = saved["assessments"][0]
    assert a["verdict"] == HELD and a["seeds"] == [0, 1, 2]
    assert [c["key"] for c in a["criteria"]] == ["growth_ratio", "scaled_accuracy"]
    assert a["criteria"][1]["samples"] == [90.0, 92.0, 91.0]
    assert a["criteria"][1]["threshold"] == 50.0 and a["criteria"][1]["comparison"] == ">="
    text = comparison.describe()
    assert saved["description"] == text
    assert text.startswith("Residual branch scale") and "over 3 seeds (0, 1, 2)" in text
    assert comparison.assessments()[0].describe() in text
    again = SeededComparison.from_dict(saved)
    assert [x.to_dict() for x in again.assessments()] == saved["assessments"]
    with open(again.plot(tmp_path / "scaling.png"), "rb") as f:  # dict runs: the criteria
        assert f.read(4) == b"\x89PNG"


def test_exact_computations_are_judged_by_their_range():
    def task(spread, growth, norm):
        return {"li_hessian": {"n2_spread": spread, "n1_growth": growth, "n3_norm": norm}}

    comparison = SeededComparison(
        name="hessian", seeds=[0, 1, 2], runs=[{}, {}, {}], settings={},
        per_seed=[task(1e-15, 2.0, 0.0), task(2e-15, 5.0, 0.0), task(3e-15, 8.0, 0.0)],
        interval="range")
    (a,) = comparison.assessments()
    assert a.verdicts == {"n2_spread": HELD, "n1_growth": INCONCLUSIVE, "n3_norm": HELD}
    e = a.estimates["n1_growth"]
    assert (e.value, e.low, e.high) == (5.0, 2.0, 8.0) and "range over 3 tasks" in e.method
    comparison.per_seed[0] = task(1e-15, 4.0, 0.0)
    assert comparison.assessments()[0].verdict == HELD
    comparison.per_seed[0] = task(1e-15, float("nan"), 0.0)  # an undefined task: no verdict
    assert comparison.assessments()[0].verdicts["n1_growth"] == INCONCLUSIVE
    assert "regression tasks" in comparison.describe()


def test_run_comparison_hessian_over_three_tasks(tmp_path):
    """Exact computations: Li et al.'s three claims hold on every task."""
    result = run_comparison("hessian", seeds=(0, 1, 2), smoke=True, progress_bar=False)
    assert result.seeds == [0, 1, 2] and result.interval == "range"
    assert [r.seed for r in result.runs] == [0, 1, 2]
    assert result.settings == SMOKE["hessian"]
    (a,) = result.assessments()
    assert a.key == "li_hessian" and a.verdict == HELD, a.describe()
    assert a.estimates["n2_spread"].high < 1e-12 and a.estimates["n3_norm"].high == 0.0
    assert a.estimates["n1_growth"].low > 3.0
    assert result.per_seed[1] == result.runs[1].statistics()
    with open(result.plot(tmp_path / "hessian.png"), "rb") as f:
        assert f.read(4) == b"\x89PNG"


def test_run_comparison_refuses_bad_arguments():
    with pytest.raises(ValueError, match="`name` must be one of .*highway"):
        run_comparison("residual_scaling")
    with pytest.raises(ValueError, match="`seeds` must be a list or tuple"):
        run_comparison("scaling", seeds=3)
    with pytest.raises(ValueError, match="`seeds`"):
        run_comparison("scaling", seeds=(0, -1))
    with pytest.raises(ValueError, match="`seeds` must not repeat"):
        run_comparison("scaling", seeds=(1, 1))
    with pytest.raises(ValueError, match="`epochs` must be a positive integer"):
        run_comparison("scaling", epochs=0)
    with pytest.raises(ValueError, match="`processes`"):
        run_comparison("hessian", processes=0)
