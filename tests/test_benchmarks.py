"""The speed benchmarks' own measuring tools (their timings are read in benchmarks/, not here)."""

import numpy as np
import pytest
from _scripts import load_script


@pytest.fixture(scope="module")
def models_bench():
    return load_script("models_bench")


def test_our_cifar_resnet_trains_with_the_same_graph_as_the_plain_reference(models_bench):
    import keras

    from keras_resnet_lab.models import cifar_resnet

    keras.utils.set_random_seed(0)
    ours = cifar_resnet(14, input_shape=(8, 8, 3), num_classes=10)
    reference = models_bench.reference_cifar_resnet(14, input_shape=(8, 8, 3), num_classes=10)
    models_bench.copy_cifar_weights(ours, reference)
    x = np.random.default_rng(0).uniform(0, 1, (4, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(reference(x, training=True), ours(x, training=True), atol=1e-5)
    y = np.arange(4, dtype="int32")
    census = {"ref": models_bench.training_graph_ops(reference, x, y),
              "ours": models_bench.training_graph_ops(ours, x, y)}
    assert census["ours"]["Conv2DBackpropFilter"] == 13  # stem + 2 per block, 6 blocks
    assert census["ours"]["Conv2DBackpropInput"] == 13
    assert models_bench.graph_differences(census) == {"ours": {}}  # op for op the same work


def test_graph_differences_lists_only_the_types_that_differ(models_bench):
    census = {"ref": {"Conv2D": 3, "BiasAdd": 2, "Relu": 1},
              "same": {"Conv2D": 3, "StridedSlice": 1, "Relu": 1},
              "twin": {"Conv2D": 3, "BiasAdd": 2, "Relu": 1}}
    assert models_bench.graph_differences(census) == {
        "same": {"BiasAdd": -2, "StridedSlice": 1}, "twin": {}}
