"""Li et al.'s Hessian at zero init (arXiv 1611.01186) and the looks-linear plain network
(Balduzzi et al., arXiv 1702.08591): exact properties, the library comparison on tiny nets, and
both scripts' --quick findings."""

import json
import math
import os

import keras
import numpy as np
import pytest
from _scripts import check_results, run_script

from keras_resnet_lab.analysis.hessian import (
    autodiff_hessian,
    condition_number,
    finite_difference_hessian,
    linear_regression_data,
    shortcut_gradient,
    shortcut_hessian,
    shortcut_loss,
    shortcut_network,
    zero_init_hessian,
    zero_weights,
)
from keras_resnet_lab.analysis.looks_linear import (
    LooksLinearComparison,
    compare_initializations,
    linearity_error,
)
from keras_resnet_lab.models import plain_mlp
from keras_resnet_lab.models.mlp import INITS

# -- the Hessian of the linear shortcut network ------------------------------------------------

def test_data_are_whitened_and_the_zero_network_is_the_identity():
    x, y = linear_regression_data(3, 40, seed=5, noise=0.1)
    np.testing.assert_allclose(x.T @ x / 40, np.eye(3), atol=1e-12)
    np.testing.assert_array_equal(shortcut_network(zero_weights(6, 3, 3), x), x)
    assert shortcut_loss(zero_weights(6, 3, 3), x, y) == pytest.approx(
        0.5 * np.mean(np.sum((x - y) ** 2, axis=1)), rel=1e-12)
    # One unit with one layer: f(x) = (I + W) x.
    w = np.random.default_rng(0).normal(size=(1, 1, 3, 3))
    np.testing.assert_allclose(shortcut_network(w, x), x @ (np.eye(3) + w[0, 0]).T)


@pytest.mark.parametrize("shortcut, units, point", [
    (1, 3, "zero"), (2, 2, "random"), (3, 2, "random"), (3, 2, "zero")])
def test_closed_form_hessian_equals_finite_differences_and_autodiff(shortcut, units, point):
    dim = 2
    x, y = linear_regression_data(dim, 20, seed=1, noise=0.2)
    rng = np.random.default_rng(shortcut)
    w = (np.zeros((units, shortcut, dim, dim)) if point == "zero"
         else 0.6 * rng.normal(size=(units, shortcut, dim, dim)))

    def loss(v):
        return shortcut_loss(v.reshape(w.shape), x, y)

    exact = shortcut_hessian(w, x, y)
    assert exact.shape == (w.size, w.size)
    np.testing.assert_array_equal(exact, exact.T)
    fd = finite_difference_hessian(loss, w, step=1e-3)
    np.testing.assert_allclose(exact, fd, atol=1e-7)
    np.testing.assert_allclose(autodiff_hessian(w, x, y), exact, atol=1e-12)
    # The gradient too, against central differences of the loss.
    step, flat = 1e-5, w.reshape(-1)
    numeric = [(loss(flat + step * e) - loss(flat - step * e)) / (2 * step)
               for e in np.eye(w.size)]
    np.testing.assert_allclose(shortcut_gradient(w, x, y), numeric, atol=1e-8)
    if point == "random":
        assert np.abs(exact).max() > 0.1


def test_zero_init_hessian_has_li_et_als_structure():
    dim = 3
    x, y = linear_regression_data(dim, 50, seed=2)
    g = x.T @ x / 50 - y.T @ x / 50
    singular = np.linalg.svd(g, compute_uv=False)
    # n = 2: block diagonal, eigenvalues +- sigma_i(G), dim * units times each, at any depth.
    for units in (1, 4):
        eig = np.linalg.eigvalsh(shortcut_hessian(zero_weights(2 * units, 2, dim), x, y))
        expected = np.sort(np.concatenate([singular, -singular] * (dim * units)))
        np.testing.assert_allclose(np.sort(eig), expected, atol=1e-12)
    h2 = shortcut_hessian(zero_weights(4, 2, dim), x, y)
    np.testing.assert_array_equal(h2[:18, 18:], 0.0)
    assert np.abs(shortcut_gradient(zero_weights(4, 2, dim), x, y)).max() == 0.0
    # n = 3: the Hessian and the gradient vanish at zero, not elsewhere.
    assert np.abs(shortcut_hessian(zero_weights(6, 3, dim), x, y)).max() == 0.0
    assert np.abs(shortcut_gradient(zero_weights(6, 3, dim), x, y)).max() == 0.0
    near = 0.3 * np.random.default_rng(0).normal(size=(2, 3, dim, dim))
    assert np.abs(shortcut_hessian(near, x, y)).max() > 1e-2
    # n = 1: with whitened inputs a one-layer net's Hessian is the identity; deeper ones couple
    # every pair of layers by S = I plus G (the later layer's rows, the earlier one's columns).
    np.testing.assert_allclose(shortcut_hessian(zero_weights(1, 1, dim), x, y), np.eye(9),
                               atol=1e-12)
    h1 = shortcut_hessian(zero_weights(2, 1, dim), x, y)
    coupling = np.eye(9) + np.einsum("ae,bc->abce", g, np.eye(dim)).reshape(9, 9)
    np.testing.assert_allclose(h1[9:, :9], coupling, atol=1e-12)
    np.testing.assert_allclose(h1[:9, 9:], coupling.T, atol=1e-12)


def test_zero_init_hessian_versus_depth(tmp_path):
    result = zero_init_hessian((1, 2, 3), max_depth=12, dim=2, n_examples=30, seed=4,
                               autodiff_depth=4, progress_bar=False)
    assert result.depths == {"1": list(range(1, 13)), "2": [2, 4, 6, 8, 10, 12],
                             "3": [3, 6, 9, 12]}
    assert result.condition_spread(2) < 1e-12
    assert result.condition["3"] == [None] * 4 and result.max_abs_eigenvalue["3"] == [0.0] * 4
    assert result.condition["1"][0] == pytest.approx(1.0, abs=1e-12)
    # n = 1: the largest eigenvalue grows (about linearly) with depth, n = 2's stays put.
    top1 = result.max_abs_eigenvalue["1"]
    assert all(b > a for a, b in zip(top1, top1[1:])) and top1[-1] > 8 * top1[1] / 2
    assert max(result.max_abs_eigenvalue["2"]) - min(result.max_abs_eigenvalue["2"]) < 1e-12
    assert result.gradient_norm["1"][0] > 0 and max(result.gradient_norm["2"]) == 0.0
    assert result.autodiff_depth == {"1": 4, "2": 4, "3": 3}
    assert max(result.autodiff_check.values()) < 1e-12
    assert len(result.eigenvalues["1"]) == 12 * 4
    # Li et al.'s statistics for this task (judged by their range over tasks).
    stats = result.statistics()["li_hessian"]
    assert stats == {"n2_spread": result.condition_spread(2),
                     "n1_growth": result.condition_growth(1), "n3_norm": 0.0}
    assert stats["n2_spread"] < 1e-12 and stats["n1_growth"] > 3.0
    assert result.interval == "range" and "width 2" in result.notes()["li_hessian"]
    only_two = zero_init_hessian((2,), max_depth=4, dim=2, n_examples=30, progress_bar=False)
    partial = only_two.statistics()["li_hessian"]
    assert math.isnan(partial["n1_growth"]) and math.isnan(partial["n3_norm"])
    path = result.to_json(str(tmp_path / "h.json"))
    with open(path) as f:
        assert json.load(f)["condition"]["3"] == [None] * 4
    with open(result.plot(str(tmp_path / "h.png")), "rb") as f:
        assert f.read(4) == b"\x89PNG"


def test_condition_number_and_finite_differences():
    assert condition_number([-2.0, 0.5, 1.0]) == 4.0
    assert condition_number([0.0, 1.0]) == math.inf
    assert condition_number(np.zeros(5)) is None
    np.testing.assert_allclose(finite_difference_hessian(lambda v: v[0] ** 2 * 3 + v[0] * v[1],
                                                         np.array([0.5, -1.0])),
                               [[6.0, 1.0], [1.0, 0.0]], atol=1e-9)


def test_bad_arguments_name_the_argument():
    x, y = linear_regression_data(2, 10)
    with pytest.raises(ValueError, match="depth"):
        zero_weights(5, 2)
    with pytest.raises(ValueError, match="shortcut"):
        zero_weights(4, 0)
    with pytest.raises(ValueError, match="weights"):
        shortcut_hessian(np.zeros((2, 2, 2)), x, y)
    with pytest.raises(ValueError, match="`x`"):
        shortcut_loss(np.zeros((1, 1, 3, 3)), x, y)
    with pytest.raises(ValueError, match="`y`"):
        shortcut_gradient(np.zeros((1, 1, 2, 2)), x, y[:5])
    with pytest.raises(ValueError, match="n_examples"):
        linear_regression_data(3, 2)
    with pytest.raises(ValueError, match="noise"):
        linear_regression_data(2, 10, noise=-1.0)
    with pytest.raises(ValueError, match="step"):
        finite_difference_hessian(lambda v: 0.0, np.zeros(2), step=0.0)
    with pytest.raises(ValueError, match="max_depth"):
        zero_init_hessian((3,), max_depth=2, progress_bar=False)
    with pytest.raises(ValueError, match="shortcuts"):
        zero_init_hessian((0, 2), progress_bar=False)
    with pytest.raises(ValueError, match="data"):
        zero_init_hessian(data=x, progress_bar=False)


# -- the looks-linear plain network --------------------------------------------------------------

def test_looks_linear_plain_network_is_an_exact_orthogonal_map_at_init():
    shape = (3, 2, 1)
    x = np.random.default_rng(0).normal(size=(16,) + shape).astype("float32")
    model = plain_mlp(3, 8, init="looks_linear", input_shape=shape, seed=1)
    assert model.name == "looks_linear_plain6"
    assert [layer.name for layer in model.layers] == [
        "input", "stem_flatten", "stem_dense", "stage1_block1", "stage1_block2",
        "stage1_block3", "predictions"]
    assert linearity_error(model, x) < 1e-5
    # Up to the last block the map is x -> Q x with orthonormal rows (6 -> 8 units): Q Q^T = I.
    trunk = keras.Model(model.input, model.get_layer("stage1_block3").output)
    basis = np.eye(6, dtype="float32").reshape((6,) + shape)
    q = np.asarray(trunk(basis))
    np.testing.assert_allclose(q @ q.T, np.eye(6), atol=1e-5)
    np.testing.assert_allclose(np.asarray(trunk(x)), x.reshape(16, 6) @ q, atol=1e-5)
    # The mirrored kernels [W; -W] of every dense layer that reads a CReLU.
    kernel = np.asarray(model.get_layer("stage1_block2").trainable_weights[0])
    assert kernel.shape == (16, 8)
    np.testing.assert_array_equal(kernel[:8], -kernel[8:])
    for init in ("he_relu", "he_crelu"):
        other = plain_mlp(3, 8, init=init, input_shape=shape, seed=1)
        assert other.name == f"{init}_plain6"
        assert linearity_error(other, x) > 1e-2
    # ``seed`` alone fixes the hidden kernels; the classifier follows Keras's global seed.
    again = plain_mlp(3, 8, init="looks_linear", input_shape=shape, seed=1, name="again")
    assert again.name == "again"
    for a, b in zip(model.get_weights()[:-2], again.get_weights()[:-2]):
        np.testing.assert_array_equal(a, b)
    keras.utils.set_random_seed(3)
    first = plain_mlp(2, 4, input_shape=(6,), seed=1).get_weights()
    keras.utils.set_random_seed(3)
    for a, b in zip(first, plain_mlp(2, 4, input_shape=(6,), seed=1).get_weights()):
        np.testing.assert_array_equal(a, b)
    other_seed = plain_mlp(3, 8, init="looks_linear", input_shape=shape, seed=2)
    assert not np.allclose(model.get_weights()[0], other_seed.get_weights()[0])


def test_plain_mlp_and_linearity_error_refuse_bad_arguments():
    assert INITS == ("looks_linear", "he_relu", "he_crelu")
    with pytest.raises(ValueError, match="`init` must be one of 'looks_linear', 'he_relu', "
                                         "'he_crelu'; got 'orthogonal'"):
        plain_mlp(3, 8, init="orthogonal")
    with pytest.raises(ValueError, match="blocks"):
        plain_mlp(0, 8)
    with pytest.raises(ValueError, match="width"):
        plain_mlp(3, 2.5)
    with pytest.raises(ValueError, match="seed"):
        plain_mlp(3, 8, seed=-1)
    model = plain_mlp(2, 4, input_shape=(5,))
    assert model.output.shape == (None, 10)
    with pytest.raises(ValueError, match="`x`"):
        linearity_error(model, np.zeros((0, 5)))
    # An affine model is exactly affine; a ReLU is not.
    inputs = keras.Input((5,))
    affine = keras.Model(inputs, keras.layers.Dense(3, bias_initializer="ones")(inputs))
    relu = keras.Model(inputs, keras.layers.ReLU()(inputs))
    x = np.random.default_rng(1).normal(size=(8, 5)).astype("float32")
    assert linearity_error(affine, x) < 1e-6
    assert linearity_error(relu, x) > 0.3


@pytest.fixture(scope="module")
def small_digits():
    from keras_resnet_lab.analysis._training import training_digits

    (x, y), (x_test, y_test) = training_digits(8, 3, batch_size=64)
    return (x[:256], y[:256]), (x_test[:128], y_test[:128])


def test_compare_initializations_tiny(small_digits, tmp_path):
    train, test = small_digits
    result = compare_initializations(train, test, blocks=3, width=8, epochs=1,
                                     learning_rates=(1e-3, 1e-2), progress_bar=False)
    assert isinstance(result, LooksLinearComparison)
    assert result.inits == ["looks_linear", "he_relu"]
    assert result.hidden_layers == 6 and result.learning_rates == [1e-3, 1e-2]
    assert (result.train_examples, result.test_examples) == (256, 128)
    for init, runs in result.runs.items():
        assert [r["lr"] for r in runs] == [1e-3, 1e-2]
        # Each init is reported at its best learning rate by final training accuracy.
        assert result.best[init]["train_accuracy"] == max(r["train_accuracy"] for r in runs)
        assert all(len(r["epoch_loss"]) == len(r["epoch_accuracy"]) == 1 for r in runs)
        # The same seed gives the same initialization at every learning rate.
        assert runs[0]["init_linearity_error"] == runs[1]["init_linearity_error"]
        assert runs[0]["init_train_loss"] == runs[1]["init_train_loss"]
        assert runs[0]["train_loss"] != runs[1]["train_loss"]
    assert result.best["looks_linear"]["init_linearity_error"] < 1e-4
    assert result.best["he_relu"]["init_linearity_error"] > 1e-2
    stats = result.statistics()
    assert stats == {"balduzzi_looks_linear": {"accuracy_gap": pytest.approx(
        100 * (result.best["looks_linear"]["train_accuracy"]
               - result.best["he_relu"]["train_accuracy"]))}}
    assert "6 hidden layers of 8 units" in result.notes()["balduzzi_looks_linear"]
    text = result.describe()
    assert "6 hidden layers of 8 units" in text and "1 epoch with Adam on 256" in text
    assert f"{result.best['looks_linear']['train_accuracy']:.1%} training accuracy" in text
    assert "finding" not in text
    with open(result.to_json(str(tmp_path / "ll.json"))) as f:
        saved = json.load(f)
    assert "criteria" not in saved and "finding_held" not in saved
    assert saved["best"]["he_relu"]["lr"] in (1e-3, 1e-2) and saved["blocks"] == 3
    with open(result.plot(str(tmp_path / "ll.png")), "rb") as f:
        assert f.read(4) == b"\x89PNG"


def _run(lr, linearity, train_accuracy):
    return dict(lr=lr, init_linearity_error=linearity, init_train_loss=2.3,
                init_train_accuracy=0.1, train_loss=0.5, train_accuracy=train_accuracy,
                test_loss=0.6, test_accuracy=train_accuracy - 0.05, epoch_loss=[1.0, 0.5],
                epoch_accuracy=[0.5, train_accuracy])


def test_looks_linear_comparison_statistics_and_description():
    runs = {"looks_linear": [_run(1e-3, 2e-6, 0.9), _run(1e-2, 2e-6, 0.95)],
            "he_relu": [_run(1e-3, 1.3, 0.2), _run(1e-2, 1.3, 0.15)],
            "he_crelu": [_run(1e-3, 0.9, 0.7), _run(1e-2, 0.9, 0.3)]}
    best = {init: max(r, key=lambda run: run["train_accuracy"]) for init, r in runs.items()}
    result = LooksLinearComparison(
        inits=list(runs), blocks=50, width=64, epochs=30, learning_rates=[1e-3, 1e-2],
        batch_size=64, seed=0, runs=runs, best=best, train_examples=1408, test_examples=360)
    # The finding's statistic: looks-linear against He/ReLU (best runs), in points.
    assert result.statistics() == {"balduzzi_looks_linear": {
        "accuracy_gap": pytest.approx(75.0)}}
    assert result.accuracy_gap("he_crelu") == pytest.approx(0.25)  # descriptive
    text = result.describe()
    assert "100 hidden layers of 64 units" in text and "30 epochs" in text
    assert "95.0% training accuracy (90.0% test) at learning rate 0.01" in text
    assert "20.0% training accuracy (15.0% test) at learning rate 0.001" in text
    assert "the CReLU one with He kernels 70.0%" in text and "75.0% ahead" in text
    del result.best["he_crelu"]
    assert "CReLU" not in result.describe()


def test_compare_initializations_refuses_bad_arguments(small_digits):
    train, test = small_digits
    quick = dict(blocks=1, width=4, epochs=1, progress_bar=False)
    with pytest.raises(ValueError, match="`inits` must be one of 'looks_linear', 'he_relu', "
                                         "'he_crelu'; got 'xavier'"):
        compare_initializations(train, test, inits=("looks_linear", "xavier"), **quick)
    with pytest.raises(ValueError, match="must include 'looks_linear' and 'he_relu'"):
        compare_initializations(train, test, inits=("looks_linear",), **quick)
    with pytest.raises(ValueError, match="repeat"):
        compare_initializations(train, test, inits=("looks_linear", "he_relu", "he_relu"),
                                **quick)
    with pytest.raises(ValueError, match="learning_rates"):
        compare_initializations(train, test, learning_rates=(1e-3, 0.0), **quick)
    with pytest.raises(ValueError, match="learning_rates"):
        compare_initializations(train, test, learning_rates=(), **quick)
    with pytest.raises(ValueError, match="blocks"):
        compare_initializations(train, test, **dict(quick, blocks=0))
    with pytest.raises(ValueError, match="epochs"):
        compare_initializations(train, test, **dict(quick, epochs=1.5))
    with pytest.raises(ValueError, match="batch_size"):
        compare_initializations(train, test, batch_size=0, **quick)
    with pytest.raises(ValueError, match="seed"):
        compare_initializations(train, test, seed=-1, **quick)
    with pytest.raises(ValueError, match="progress_bar"):
        compare_initializations(train, test, **dict(quick, progress_bar="no"))
    with pytest.raises(ValueError, match="`train`"):
        compare_initializations(train[0], test, **quick)
    with pytest.raises(ValueError, match="`test`"):
        compare_initializations(train, (test[0], test[1][:5]), **quick)
    with pytest.raises(ValueError, match="same shape"):
        compare_initializations(train, (test[0][:, :4], test[1]), **quick)


# -- the reproduction scripts --------------------------------------------------------------------

def test_hessian_li_quick(tmp_path):
    results = run_script("hessian_li", tmp_path)
    found = check_results(results, tmp_path, "hessian_li", ["li_hessian"])
    # Exact computations on 3 regression tasks (seeds 0-2), judged over their range.
    hessian = found["li_hessian"]
    assert hessian["seeds"] == [0, 1, 2] and hessian["verdict"] == "held"
    assert [c["n"] for c in hessian["criteria"]] == [3, 3, 3]
    numbers = results["numbers"]
    assert numbers["depths"]["1"] == list(range(1, 33))
    assert numbers["depths"]["3"] == list(range(3, 31, 3))
    assert max(numbers["n2_relative_spread"]) < 1e-9
    assert all(v == 0.0 for task in numbers["max_abs_eigenvalue"]["3"] for v in task)
    assert all(c[-1] > 10 * c2 for c, c2 in zip(numbers["condition"]["1"],
                                                numbers["n2_condition"]))
    assert os.path.exists(tmp_path / "hessian_result.json")
    growth = hessian["criteria"][1]
    assert growth["key"] == "n1_growth" and growth["samples"] == pytest.approx(
        numbers["n1_condition_growth"])


@pytest.mark.slow  # a whole --quick run; the library comparison is tested above, and in the lab
def test_looks_linear_balduzzi_quick(tmp_path):
    results = run_script("looks_linear_balduzzi", tmp_path)
    found = check_results(results, tmp_path, "looks_linear_balduzzi", ["balduzzi_looks_linear"])
    # 3 seeds: +73 points [+65, +80] over the He initialization (the rule: > 20).
    gap = found["balduzzi_looks_linear"]["criteria"][0]
    assert found["balduzzi_looks_linear"]["verdict"] == "held" and gap["estimate"] > 40
    assert gap["samples"] == pytest.approx(
        [100 * (s["looks_linear"]["train_accuracy"] - s["he_relu"]["train_accuracy"])
         for s in results["numbers"]["per_seed"].values()])
    best = results["numbers"]["best"]
    assert results["config"]["hidden_layers"] >= 50
    assert best["looks_linear"]["init_linearity_error"] < 1e-4
    assert best["looks_linear"]["train_accuracy"] > 0.85 > 0.5 > best["he_relu"]["train_accuracy"]
    assert best["looks_linear"]["test_accuracy"] > 0.8
