"""Li et al.'s Hessian at zero init (arXiv 1611.01186) and the looks-linear plain network
(Balduzzi et al., arXiv 1702.08591): exact properties, and both scripts' --quick findings."""

import importlib.util
import json
import math
import os

import keras
import numpy as np
import pytest
from _scripts import BENCHMARKS, check_results, run_script

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


def _load_script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(BENCHMARKS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    script = _load_script("looks_linear_balduzzi")
    shape = (3, 2, 1)
    x = np.random.default_rng(0).normal(size=(16,) + shape).astype("float32")
    model = script.plain_network("looks_linear", 3, 8, shape, seed=1)
    assert len(model.layers) == 7 and model.layers[-1].name == "predictions"
    assert script.linearity_error(model, x) < 1e-5
    # Up to the last block the map is x -> Q x with orthonormal rows (6 -> 8 units): Q Q^T = I.
    trunk = keras.Model(model.input, model.get_layer("stage1_block3").output)
    basis = np.eye(6, dtype="float32").reshape((6,) + shape)
    q = np.asarray(trunk(basis))
    np.testing.assert_allclose(q @ q.T, np.eye(6), atol=1e-5)
    np.testing.assert_allclose(np.asarray(trunk(x)), x.reshape(16, 6) @ q, atol=1e-5)
    for kind in ("he_relu", "he_crelu"):
        other = script.plain_network(kind, 3, 8, shape, seed=1)
        assert script.linearity_error(other, x) > 1e-2
    with pytest.raises(ValueError, match="kind"):
        script.plain_network("orthogonal", 3, 8, shape)


# -- the reproduction scripts --------------------------------------------------------------------

def test_hessian_li_quick(tmp_path):
    results = run_script("hessian_li", tmp_path)
    check_results(results, tmp_path, "hessian_li")
    assert results["finding_held"] is True
    numbers = results["numbers"]
    assert numbers["depths"]["1"] == list(range(1, 33))
    assert numbers["depths"]["3"] == list(range(3, 31, 3))
    assert max(numbers["n2_relative_spread"]) < 1e-9
    assert all(v == 0.0 for task in numbers["max_abs_eigenvalue"]["3"] for v in task)
    assert all(c[-1] > 10 * c2 for c, c2 in zip(numbers["condition"]["1"],
                                                numbers["n2_condition"]))
    assert os.path.exists(tmp_path / "hessian_result.json")


def test_looks_linear_balduzzi_quick(tmp_path):
    results = run_script("looks_linear_balduzzi", tmp_path)
    check_results(results, tmp_path, "looks_linear_balduzzi")
    assert results["finding_held"] is True
    best = results["numbers"]["best"]
    assert results["config"]["hidden_layers"] >= 50
    assert best["looks_linear"]["init_linearity_error"] < 1e-4
    assert best["looks_linear"]["train_accuracy"] > 0.85 > 0.5 > best["he_relu"]["train_accuracy"]
    assert best["looks_linear"]["test_accuracy"] > 0.8
