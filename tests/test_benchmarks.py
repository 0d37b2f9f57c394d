"""The speed benchmarks' own measuring tools (their timings are read in benchmarks/, not here)."""

import numpy as np
import pytest
from _scripts import load_script


@pytest.fixture(scope="module")
def models_bench():
    return load_script("models_bench")


def test_our_cifar_resnet_trains_the_reference_graph_with_fused_batch_norms(models_bench):
    """Our CIFAR ResNet-14 trains with the plain reference's graph, op for op, except that each
    batch norm is one fused kernel (forward and gradient); with the kernel off the graphs are
    identical."""
    import keras

    from keras_resnet_lab.layers import FusedBatchNormalization
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
    with models_bench.switched(FusedBatchNormalization, "fused", False):
        census["ours_unfused"] = models_bench.training_graph_ops(ours, x, y)
    assert FusedBatchNormalization.fused  # restored
    differences = models_bench.graph_differences(census)
    assert differences["ours_unfused"] == {}  # op for op the same work
    convs = 13  # stem + 2 per block, 6 blocks; a batch norm after each
    for op in ("Conv2D", "Conv2DBackpropFilter", "Conv2DBackpropInput"):
        assert census["ours"][op] == census["ref"][op] == convs
    assert differences["ours"]["FusedBatchNormV3"] == convs
    assert differences["ours"]["FusedBatchNormGradV3"] == convs
    assert differences["ours"]["SquaredDifference"] == -convs  # Keras's separate variance


def test_graph_differences_lists_only_the_types_that_differ(models_bench):
    census = {"ref": {"Conv2D": 3, "BiasAdd": 2, "Relu": 1},
              "same": {"Conv2D": 3, "StridedSlice": 1, "Relu": 1},
              "twin": {"Conv2D": 3, "BiasAdd": 2, "Relu": 1}}
    assert models_bench.graph_differences(census) == {
        "same": {"BiasAdd": -2, "StridedSlice": 1}, "twin": {}}
