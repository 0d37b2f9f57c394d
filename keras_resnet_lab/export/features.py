"""The multi-output "features" model behind every artifact: stem, each block, final output.

Exported artifacts expose every block's output by name. They are built from one Keras
functional model whose outputs are, in chain order:

- ``stem``: the stem's output, i.e. the first block's input;
- ``stage{s}_block{b}``: each block's output (the names of :func:`keras_resnet_lab.models.blocks`);
- ``output``: the model's own output (logits for the library's default
  ``classifier_activation=None``; whatever the model's last layer gives otherwise).

Building this model in Keras first (rather than adding outputs to a converted graph) keeps the
Keras names and the NHWC layout in every format.
"""

import dataclasses

import keras

from keras_resnet_lab import _keras_compat
from keras_resnet_lab.export.manifest import preprocessing_spec
from keras_resnet_lab.export.parity import parity_batch
from keras_resnet_lab.models import blocks

STEM = "stem"
OUTPUT = "output"
#: The name of every artifact's input.
INPUT = "input"


@dataclasses.dataclass(frozen=True)
class FeatureOutput:
    """One output of the features model.

    Attributes:
        name: output name (``stem``, a block name, or ``output``).
        role: ``"stem"``, ``"block"`` or ``"output"``.
        block_index: 0-based place of the block in the chain (None for stem and output).
        stage: 1-based stage of the block (None for stem and output).
        block: 1-based place of the block in its stage (None for stem and output).
        layer: the Keras layer producing it (the block, the stem's last layer, the model's
            last layer).
        layer_type: the class name of that layer.
        shape: shape with None for the batch (and any other dynamic) axis.
        dtype: dtype name, e.g. ``"float32"``.
    """

    name: str
    role: str
    block_index: object
    stage: object
    block: object
    layer: str
    layer_type: str
    shape: tuple
    dtype: str

    def to_dict(self):
        """JSON-ready dict."""
        data = dataclasses.asdict(self)
        data["shape"] = list(self.shape)
        return data


def _graph(model):
    """The functional graph of ``model`` (a Sequential model's inner functional model)."""
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model, got {type(model).__name__}.")
    graph = _keras_compat.functional_graph(model)
    if graph is None:
        raise ValueError(f"cannot export model '{model.name}': export needs a functional (or "
                         "built Sequential) model; subclassed models have no graph of blocks.")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError(f"cannot export model '{model.name}': export needs exactly one input "
                         f"and one output, got {len(graph.inputs)} input(s) and "
                         f"{len(graph.outputs)} output(s).")
    return graph


def _block_node(graph, info, graph_nodes):
    nodes = [node for node in _keras_compat.inbound_nodes(info.layer) if node in graph_nodes]
    if len(nodes) != 1:
        raise ValueError(f"cannot export model '{graph.name}': block '{info.name}' is applied "
                         f"{len(nodes)} times in it; export needs a chain in which each block "
                         "is applied once (not an unrolled or weight-shared model).")
    node = nodes[0]
    if len(_keras_compat.node_inputs(node)) != 1 or len(_keras_compat.node_outputs(node)) != 1:
        raise ValueError(f"cannot export model '{graph.name}': block '{info.name}' must take "
                         "one tensor and give one.")
    return node


def _spec(tensor):
    shape = tuple(None if d is None else int(d) for d in tensor.shape)
    return shape, keras.backend.standardize_dtype(tensor.dtype)


def feature_tensors(model):
    """The outputs of the features model as ``[(FeatureOutput, KerasTensor), ...]``.

    Validates that the model is exportable: a functional (or Sequential) model with one input
    and one output whose blocks form a chain (each block applied once, each block's input the
    previous block's output).

    Args:
        model: a model of this library (any builder), converted from keras.applications, or
            loaded from a ``.keras`` file.

    Raises:
        ValueError: the model has no blocks, is not a chain, or is not functional.

    Example:
        >>> [o.name for o, _ in feature_tensors(cifar_resnet(20))][:2]
        ['stem', 'stage1_block1']
    """
    graph = _graph(model)
    try:
        chain = blocks(model)
    except ValueError as error:
        raise ValueError(f"cannot export model '{model.name}': {error}") from error
    graph_nodes = _keras_compat.graph_nodes(graph)
    result = []
    previous = None
    for info in chain:
        node = _block_node(graph, info, graph_nodes)
        x, y = _keras_compat.node_inputs(node)[0], _keras_compat.node_outputs(node)[0]
        if previous is None:
            stem = _keras_compat.producing_operation(x)
            shape, dtype = _spec(x)
            result.append((FeatureOutput(STEM, "stem", None, None, None,
                                         stem.name if stem is not None else "input",
                                         type(stem).__name__ if stem is not None else "Input",
                                         shape, dtype), x))
        elif x is not previous[1]:
            between = _keras_compat.producing_operation(x)
            raise ValueError(
                f"cannot export model '{model.name}': it is not a chain of blocks: block "
                f"'{info.name}' takes the output of layer "
                f"'{getattr(between, 'name', '?')}', not of block '{previous[0]}'. Export "
                "needs stem -> stage1_block1 -> ... -> last block -> head.")
        shape, dtype = _spec(y)
        result.append((FeatureOutput(info.name, "block", info.index, info.stage, info.block,
                                     info.layer.name, type(info.layer).__name__, shape,
                                     dtype), y))
        previous = (info.name, y)
    out = graph.outputs[0]
    last = _keras_compat.producing_operation(out)
    shape, dtype = _spec(out)
    result.append((FeatureOutput(OUTPUT, "output", None, None, None, last.name,
                                 type(last).__name__, shape, dtype), out))
    names = {layer.name for layer in graph.layers}
    for reserved in (STEM, OUTPUT):
        if reserved in names:
            raise ValueError(f"cannot export model '{model.name}': it has a layer named "
                             f"{reserved!r}, a name export reserves for its own outputs.")
    return result


def features_model(model, intermediate=True):
    """A functional model sharing ``model``'s layers, with the export outputs as a list.

    Its ``output_names`` are ``["stem", "stage1_block1", ..., "output"]`` (only ``["output"]``
    with ``intermediate=False``), which is what the ONNX converter names the graph outputs.

    Args:
        model: an exportable model (see :func:`feature_tensors`).
        intermediate: include the stem and every block's output.

    Returns:
        ``(features, outputs)``: the Keras model and the list of :class:`FeatureOutput`.

    Example:
        >>> features, outputs = features_model(cifar_resnet(20))
        >>> features.output_names[:2]
        ['stem', 'stage1_block1']
    """
    pairs = feature_tensors(model)
    if not intermediate:
        pairs = pairs[-1:]
    tensors = []
    for spec, tensor in pairs:
        if spec.role == "block":
            tensors.append(tensor)
        else:
            tensors.append(keras.layers.Identity(name=spec.name)(tensor))
    graph = _graph(model)
    features = keras.Model(graph.inputs[0], tensors, name=f"{model.name}_features")
    return features, [spec for spec, _ in pairs]


def input_spec(model):
    """The ``tf.TensorSpec`` of ``model``'s input (its shape, dynamic batch axis, and dtype),
    named :data:`INPUT`: the input signature of every converted artifact."""
    import tensorflow as tf

    inp = model.inputs[0]
    return tf.TensorSpec(tuple(inp.shape), keras.backend.standardize_dtype(inp.dtype),
                         name=INPUT)


def staging_inputs(model, *, intermediate, preprocessing, sample, batch_size):
    """What every format's staging starts with: the features model and its outputs
    (:func:`features_model`), ``preprocessing`` checked against the input's channels
    (:func:`~keras_resnet_lab.export.manifest.preprocessing_spec`), and the batch parity is
    measured on (:func:`~keras_resnet_lab.export.parity.parity_batch`).

    Returns:
        ``(features, outputs, x, description)``.
    """
    features, outputs = features_model(model, intermediate=intermediate)
    shape = tuple(model.inputs[0].shape)
    preprocessing_spec(preprocessing, shape[-1] or 1)
    x, description = parity_batch(shape, keras.backend.standardize_dtype(model.inputs[0].dtype),
                                  sample, batch_size)
    return features, outputs, x, description


def feature_values(features, outputs, x):
    """The features model on ``x`` at inference: ``{name: tensor}`` in chain order, what
    every artifact's ``features`` signature returns (also inside a traced function)."""
    values = features(x, training=False)
    if not isinstance(values, (list, tuple)):
        values = [values]
    return {spec.name: value for spec, value in zip(outputs, values)}


def run_features(features, outputs, x):
    """Run the Keras features model on ``x`` at inference: ``{name: numpy array}``.

    Args:
        features: the model from :func:`features_model`.
        outputs: its :class:`FeatureOutput` list.
        x: an input batch.

    Example:
        >>> features, outputs = features_model(model)  # doctest: +SKIP
        >>> run_features(features, outputs, x)["stage1_block1"].shape  # doctest: +SKIP
        (8, 32, 32, 16)
    """
    return {name: keras.ops.convert_to_numpy(value)
            for name, value in feature_values(features, outputs, x).items()}
