"""keras_resnet_lab._keras_compat: every private Keras API the package uses works in the installed
Keras. One test per private name: when a Keras upgrade moves one, the test named after it fails
and says which, and no other module of the package reaches into Keras's internals."""

import ast
import pathlib
import re

import keras
import numpy as np
import pytest

from keras_resnet_lab import _keras_compat as compat
from keras_resnet_lab.layers import ResidualBlock

ROOT = pathlib.Path(__file__).resolve().parents[1] / "keras_resnet_lab"


def _chain():
    """A two-layer functional model: input -> dense -> output."""
    inputs = keras.Input((3,), name="x")
    dense = keras.layers.Dense(2, name="dense")
    outputs = dense(inputs)
    return keras.Model(inputs, outputs), inputs, dense, outputs


def _history():
    _, _, dense, outputs = _chain()
    assert compat.producer(outputs) == (dense, compat.inbound_nodes(dense)[0])
    assert compat.producing_operation(outputs) is dense
    for made_by_none in (keras.KerasTensor((2, 3)), np.ones(3)):
        assert compat.producer(made_by_none) is None
        assert compat.producing_operation(made_by_none) is None


def _inbound_nodes():
    _, inputs, dense, _ = _chain()
    dense(inputs)  # a second call: a second node
    assert len(compat.inbound_nodes(dense)) == 2


def _is_input():
    _, inputs, dense, outputs = _chain()
    assert compat.is_input_node(compat.producer(inputs)[1])
    assert not compat.is_input_node(compat.producer(outputs)[1])


def _input_tensors():
    _, inputs, _, outputs = _chain()
    assert compat.node_inputs(compat.producer(outputs)[1]) == [inputs]


def _output_tensors():
    _, _, _, outputs = _chain()
    assert compat.node_outputs(compat.producer(outputs)[1]) == [outputs]


def _arguments():
    _, inputs, _, outputs = _chain()
    args, kwargs = compat.node_arguments(compat.producer(outputs)[1])
    assert args[0] is inputs and kwargs == {}


def _fill_in():
    _, inputs, _, outputs = _chain()
    value = np.ones((1, 3), "float32")
    args, _ = compat.node_arguments(compat.producer(outputs)[1], {id(inputs): value})
    assert args[0] is value


def _nodes_by_depth():
    model, _, _, outputs = _chain()
    graph = compat.functional_graph(model)
    assert graph is model and compat.producer(outputs)[1] in compat.graph_nodes(graph)


def _sequential_functional():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    graph = compat.functional_graph(model)
    assert graph is not None and len(compat.graph_nodes(graph)) == 2
    assert compat.functional_graph(keras.Sequential([keras.layers.Dense(2)])) is None  # unbuilt


def _layers():
    block = ResidualBlock(4, name="b")
    block.build((None, 5, 5, 4))
    assert set(block.convs) | set(block.norms) <= set(compat.sublayers(block))


def _flatten_layers():
    block = ResidualBlock(4, name="b")
    model = keras.Sequential([keras.Input((5, 5, 4)), block])
    assert set(block.convs) <= set(compat.flatten_layers(model))


def _compiled():
    model, _, _, _ = _chain()
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model, (np.ones((4, 3), "float32"), np.zeros((4, 2), "float32"))


def _symbolic_build():
    model, batch = _compiled()
    compat.symbolic_build(model, batch)
    assert model.optimizer.built and len(model.optimizer.variables) > 1  # slots made


def _maybe_symbolic_build():
    model, batch = _compiled()
    calls = []

    def build(iterator=None, data_batch=None):
        calls.append(1)
        compat.symbolic_build(model, batch)

    compat.replace_symbolic_build(model, build)
    model.fit(*batch, epochs=1, verbose=0)
    assert calls  # fit builds through the replacement


def _data_format():
    assert compat.tensorflow_data_format(None, 4) == "NHWC"
    assert compat.tensorflow_data_format("channels_first", 4) == "NCHW"


def _conv():
    seen = []

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        seen.append(tuple(kernel.shape))
        return original(inputs, kernel, strides, padding, data_format, dilation_rate)

    from keras.src.backend.tensorflow import nn

    original = nn.conv
    with compat.replaced_tensorflow_conv(conv):
        keras.ops.conv(np.ones((1, 4, 4, 2), "float32"), np.ones((1, 1, 2, 3), "float32"))
    assert seen == [(1, 1, 2, 3)] and nn.conv is original


PROBES = {
    "KerasTensor._keras_history": _history,
    "Operation._inbound_nodes": _inbound_nodes,
    "Node.is_input": _is_input,
    "Node.input_tensors": _input_tensors,
    "Node.output_tensors": _output_tensors,
    "Node.arguments": _arguments,
    "SymbolicArguments.fill_in": _fill_in,
    "Functional._nodes_by_depth": _nodes_by_depth,
    "Sequential._functional": _sequential_functional,
    "Layer._layers": _layers,
    "Layer._flatten_layers": _flatten_layers,
    "Trainer._symbolic_build": _symbolic_build,
    "Trainer._maybe_symbolic_build": _maybe_symbolic_build,
    "keras.src.backend.standardize_data_format": _data_format,
    "keras.src.backend.tensorflow.nn._convert_data_format": _data_format,
    "keras.src.backend.tensorflow.nn.conv": _conv,
}


def test_every_private_name_has_a_probe():
    assert set(PROBES) == set(compat.INTERNALS)


@pytest.mark.parametrize("name", compat.INTERNALS)
def test_private_keras_api_works(name):
    try:
        PROBES[name]()
    except (AttributeError, ImportError, TypeError, compat.KerasInternalsChanged) as error:
        pytest.fail(f"Keras {keras.__version__} moved or changed {name}, which "
                    f"keras_resnet_lab/_keras_compat.py uses: {type(error).__name__}: {error}")


def test_a_missing_private_api_is_named():
    with pytest.raises(compat.KerasInternalsChanged,
                       match=rf"Keras {re.escape(keras.__version__)} has no "
                             r"Operation\._inbound_nodes"):
        compat.inbound_nodes(object())


def _private_names():
    return {name.split(".")[-1] for name in compat.INTERNALS
            if name.split(".")[-1].startswith("_")}


def _private_uses(source, names):
    """Line numbers of the code (not the strings or comments) in ``source`` that reaches a
    private Keras name: ``x.NAME``, ``getattr(x, "NAME")``, or an import from ``keras.src``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and (
                node.attr in names or (node.attr == "src" and isinstance(node.value, ast.Name)
                                       and node.value.id == "keras")):
            lines.append(node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "hasattr", "setattr") and len(node.args) > 1
              and isinstance(node.args[1], ast.Constant) and node.args[1].value in names):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras.src"):
            lines.append(node.lineno)
        elif isinstance(node, ast.Import) and any(a.name.startswith("keras.src")
                                                  for a in node.names):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_scan_finds_private_uses():
    source = ("import keras\nfrom keras.src import backend\nh = t._keras_history\n"
              "n = getattr(op, '_inbound_nodes', [])\ns = '_keras_history in a string'\n")
    assert _private_uses(source, _private_names()) == [2, 3, 4]


def test_no_other_module_uses_a_private_keras_api():
    names = _private_names()
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "_keras_compat.py":
            continue
        lines = _private_uses(path.read_text(), names)
        if lines:
            found[rel] = lines
    assert found == {}, ("private Keras API outside keras_resnet_lab/_keras_compat.py (use "
                         f"its functions): {found}")
