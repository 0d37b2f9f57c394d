"""Every use of a private Keras API in this package, in one place.

Keras 3 has no public way to do a few things the package needs: find the call (node) that made
a symbolic tensor, and replay it on another input (surgery, float32 outputs, export); list the
calls of a functional graph; reach a Sequential model's inner functional model or a layer's
sublayers; build a model symbolically on a given batch (multi-worker training); and swap the
TensorFlow backend's convolution while converting a graph (export). Each is reached here and
nowhere else, through the functions below. ``tests/test_keras_compat.py`` runs every one on a
tiny model, one test per private name of :data:`INTERNALS`, so a Keras upgrade that moves one
fails there, naming it, rather than deep inside an analysis or an export.

Keras is imported inside the functions: this module is part of the foundation, which loads
nothing heavy when imported.
"""

import contextlib

#: The private Keras names this module uses (what ``tests/test_keras_compat.py`` checks).
INTERNALS = (
    "KerasTensor._keras_history",
    "Operation._inbound_nodes",
    "Node.is_input",
    "Node.input_tensors",
    "Node.output_tensors",
    "Node.arguments",
    "SymbolicArguments.fill_in",
    "Functional._nodes_by_depth",
    "Sequential._functional",
    "Layer._layers",
    "Layer._flatten_layers",
    "Trainer._symbolic_build",
    "Trainer._maybe_symbolic_build",
    "keras.src.backend.standardize_data_format",
    "keras.src.backend.tensorflow.nn.conv",
    "keras.src.backend.tensorflow.nn._convert_data_format",
)


class KerasInternalsChanged(RuntimeError):
    """A private Keras API this package relies on is missing in the installed Keras."""


def _missing(name, error=None):
    import keras

    message = (f"Keras {keras.__version__} has no {name}, a private API keras_resnet_lab uses "
               "(keras_resnet_lab/_keras_compat.py; tests/test_keras_compat.py lists every "
               "one): this Keras version is not supported yet.")
    return KerasInternalsChanged(message) if error is None else KerasInternalsChanged(
        f"{message} ({type(error).__name__}: {error})")


def _attribute(obj, attribute, name):
    try:
        return getattr(obj, attribute)
    except AttributeError as error:
        raise _missing(name, error) from None


# -- the graph of a functional model ---------------------------------------------------------
def _history(tensor):
    history = getattr(tensor, "_keras_history", None)
    return None if history is None or history.operation is None else history


def producing_operation(tensor):
    """The operation (a layer) whose call made the symbolic ``tensor``, or None for a tensor
    that no operation made (an eager tensor, a bare ``KerasTensor``)."""
    history = _history(tensor)
    return None if history is None else history.operation


def producer(tensor):
    """``(operation, node)``: the operation whose call (``node``) made the symbolic ``tensor``,
    or None for a tensor that no operation made (an eager tensor, a bare ``KerasTensor``)."""
    history = _history(tensor)
    if history is None:
        return None
    return history.operation, inbound_nodes(history.operation)[history.node_index]


def inbound_nodes(operation):
    """The calls (nodes) of ``operation`` on symbolic tensors, in call order."""
    return _attribute(operation, "_inbound_nodes", "Operation._inbound_nodes")


def is_input_node(node):
    """Whether ``node`` is the call of an ``InputLayer`` (the start of a graph)."""
    return _attribute(node, "is_input", "Node.is_input")


def node_inputs(node):
    """The symbolic tensors ``node`` was called on, in order."""
    return _attribute(node, "input_tensors", "Node.input_tensors")


def node_outputs(node):
    """The symbolic tensors ``node``'s call returned, in order."""
    return _attribute(node, "output_tensors", "Node.output_tensors")


def node_arguments(node, replacements=None):
    """``(args, kwargs)`` of the call ``node``, each input tensor ``t`` replaced by
    ``replacements[id(t)]`` (the original symbolic tensors when ``replacements`` is None)."""
    arguments = _attribute(node, "arguments", "Node.arguments")
    if replacements is None:
        return arguments.args, arguments.kwargs
    fill_in = _attribute(arguments, "fill_in", "SymbolicArguments.fill_in")
    return fill_in(replacements)


def functional_graph(model):
    """The functional graph of ``model``: the model itself, a Sequential model's inner
    functional model, or None (a subclassed or unbuilt Sequential model has none)."""
    import keras

    if isinstance(model, keras.Sequential):
        model = getattr(model, "_functional", None)
    if model is None or not hasattr(model, "_nodes_by_depth"):
        return None
    return model


def graph_nodes(graph):
    """Every call (node) of the functional ``graph`` (from :func:`functional_graph`)."""
    by_depth = _attribute(graph, "_nodes_by_depth", "Functional._nodes_by_depth")
    return {node for nodes in by_depth.values() for node in nodes}


# -- layers -----------------------------------------------------------------------------------
def sublayers(layer):
    """The layers ``layer`` tracks directly (a block's convolutions, a model's layers)."""
    return list(_attribute(layer, "_layers", "Layer._layers"))


def flatten_layers(layer, include_self=False):
    """Every layer inside ``layer``, recursively (blocks' sublayers included)."""
    flatten = _attribute(layer, "_flatten_layers", "Layer._flatten_layers")
    return list(flatten(include_self=include_self, recursive=True))


# -- training -------------------------------------------------------------------------------
def symbolic_build(model, data_batch):
    """Build ``model``'s weights, metrics and optimizer variables symbolically from the shapes
    and dtypes of ``data_batch`` (an ``(x, y)`` batch), as ``fit`` does on its first batch."""
    _attribute(model, "_symbolic_build", "Trainer._symbolic_build")(data_batch=data_batch)


def replace_symbolic_build(model, build):
    """Make ``fit``/``evaluate`` call ``build(iterator=None, data_batch=None)`` instead of
    Keras's ``_maybe_symbolic_build`` on this model only."""
    _attribute(model, "_maybe_symbolic_build", "Trainer._maybe_symbolic_build")
    model._maybe_symbolic_build = build


# -- the TensorFlow backend ------------------------------------------------------------------
def tensorflow_data_format(data_format, rank):
    """TensorFlow's name (``"NHWC"``, ...) for Keras's ``data_format`` (None: the default) of a
    tensor of ``rank`` dimensions."""
    try:
        from keras.src import backend
        from keras.src.backend.tensorflow import nn
    except ImportError as error:
        raise _missing("keras.src.backend.tensorflow.nn", error) from None
    standardize = _attribute(backend, "standardize_data_format",
                             "keras.src.backend.standardize_data_format")
    convert = _attribute(nn, "_convert_data_format",
                         "keras.src.backend.tensorflow.nn._convert_data_format")
    return convert(standardize(data_format), rank)


@contextlib.contextmanager
def replaced_tensorflow_conv(conv, missing_ok=False):
    """Within the block, Keras's TensorFlow backend computes ``keras.ops.conv`` with ``conv``
    (same signature: ``inputs, kernel, strides, padding, data_format, dilation_rate``).

    With ``missing_ok``, a Keras without the TensorFlow backend's module leaves the convolution
    as it is instead of raising."""
    try:
        from keras.src.backend.tensorflow import nn
    except ImportError as error:
        if missing_ok:
            yield
            return
        raise _missing("keras.src.backend.tensorflow.nn", error) from None
    original = _attribute(nn, "conv", "keras.src.backend.tensorflow.nn.conv")
    nn.conv = conv
    try:
        yield
    finally:
        nn.conv = original
