"""analysis/degradation.py: He et al.'s depth comparison of plain and residual networks (the
degradation problem), its statistic, judgement over seeds and a tiny run."""

import numpy as np
import pytest

from keras_resnet_lab.analysis.comparisons import SeededComparison
from keras_resnet_lab.analysis.degradation import DepthComparison, compare_depths
from keras_resnet_lab.findings import HELD, NOT_HELD


def _depths(plain_deep, resnet_deep, seed=0):
    errors = {"plain8": 0.01, "plain56": plain_deep, "resnet8": 0.005, "resnet56": resnet_deep}
    names = list(errors)
    return DepthComparison(
        depths=[8, 56], widths=[16, 32, 64], epochs=3, batch_size=128, learning_rate=0.05,
        momentum=0.9, weight_decay=5e-4, milestones=[0.5, 0.75], warmup_epochs=1.0, seed=seed,
        train_examples=1408,
        curves={n: {"loss": [2.0, 1.0, 0.5], "error": [0.8, 0.4, errors[n]]} for n in names},
        final_train_error=errors, final_train_loss=dict.fromkeys(names, 0.1),
        final_test_error={n: e + 0.02 for n, e in errors.items()},
        final_test_loss=dict.fromkeys(names, 0.2), params=dict.fromkeys(names, 1000))


def test_he_degradation_statistic_on_a_synthetic_case(tmp_path):
    result = _depths(0.80, 0.002)
    stats = result.statistics()["he_degradation"]
    assert stats == pytest.approx({"plain_rise": 79.0, "residual_rise": -0.3})
    assert result.rise("plain") == pytest.approx(0.79) and (result.shallow, result.deep) == (8, 56)
    text = result.describe()
    assert "training error of 1.0%/80.0%" in text and "ResNets 0.5%/0.2%" in text
    # Over three seeds: plain nets far worse deep, ResNets not -> held.
    runs = [_depths(0.80, 0.002, 0), _depths(0.60, 0.004, 1), _depths(0.85, 0.001, 2)]
    comparison = SeededComparison.from_runs("depth", [0, 1, 2], runs, {})
    (a,) = comparison.assessments()
    assert a.verdict == HELD and a.estimates["plain_rise"].value == pytest.approx(74.0)
    assert "inference mode" in a.notes
    # The deep ResNet degrades as much as the plain one: not held.
    worse = [_depths(0.80, 0.30, s) for s in range(3)]
    worse[1].final_train_error["resnet56"] = 0.35
    (b,) = SeededComparison.from_runs("depth", [0, 1, 2], worse, {}).assessments()
    assert b.verdicts == {"plain_rise": HELD, "residual_rise": NOT_HELD}
    with open(comparison.plot(tmp_path / "depth.png"), "rb") as f:
        assert f.read(4) == b"\x89PNG"


def test_compare_depths_tiny_run_and_arguments():
    from keras_resnet_lab.analysis._training import training_digits
    from keras_resnet_lab.models import cifar_resnet

    (x, y), (xt, yt) = training_digits(8, 3, batch_size=64)
    train, test = (x[:128], y[:128]), (xt[:64], yt[:64])
    result = compare_depths(train, test, depths=(14, 8), epochs=2, batch_size=64,
                            progress_bar=False)
    assert result.depths == [8, 14] and result.train_examples == 128
    assert set(result.final_train_error) == {"plain8", "plain14", "resnet8", "resnet14"}
    # Default widths: exactly He et al.'s CIFAR nets (option A shortcuts add no weight).
    assert result.params["resnet14"] == result.params["plain14"] == sum(
        int(np.prod(w.shape)) for w in cifar_resnet(14, input_shape=(8, 8, 3)).trainable_weights)
    for name, curve in result.curves.items():
        assert len(curve["loss"]) == len(curve["error"]) == 2
        # Errors are exact counts over the 128 training / 64 test examples.
        assert result.final_train_error[name] * 128 == round(result.final_train_error[name] * 128)
        assert result.final_test_error[name] * 64 == round(result.final_test_error[name] * 64)
    stats = result.statistics()["he_degradation"]
    err = result.final_train_error
    assert stats["plain_rise"] == pytest.approx(100 * (err["plain14"] - err["plain8"]))
    assert stats["residual_rise"] == pytest.approx(100 * (err["resnet14"] - err["resnet8"]))
    for kwargs, match in [(dict(depths=(8,)), "depths"), (dict(depths=(8, 10)), "depths"),
                          (dict(depths=(8, 8)), "depths"), (dict(widths=(8, 8)), "widths"),
                          (dict(epochs=1), "warmup_epochs"), (dict(epochs=0), "epochs"),
                          (dict(learning_rate=0.0), "learning_rate"),
                          (dict(weight_decay=-1.0), "weight_decay"), (dict(seed=-1), "seed")]:
        with pytest.raises(ValueError, match=match):
            compare_depths(train, test, progress_bar=False, **kwargs)
    with pytest.raises(ValueError, match="`train` must be a pair"):
        compare_depths(x, test)
