"""ONNX export: graph outputs named after the blocks (plus ``stem`` and ``output``), NHWC,
dynamic batch axis, converted with tf2onnx from the multi-output Keras features model."""

import collections
import contextlib
import json
import os

from keras_resnet_lab._checks import boolean, number_in, one_of
from keras_resnet_lab.export import _atomic
from keras_resnet_lab.export.features import INPUT, input_spec, run_features, staging_inputs
from keras_resnet_lab.export.manifest import MANIFEST_NAME, build_manifest
from keras_resnet_lab.export.parity import DEFAULT_BATCH, DEFAULT_TOLERANCE, compare, require

ONNX_FILE = "model.onnx"
OPSETS = tuple(range(9, 19))
DEFAULT_OPSET = 17
#: The one name of the batch axis of the graph's input and of every output.
BATCH_AXIS = "batch"
#: What ``optimize=True`` runs: onnxsim (onnx-simplifier; manylinux wheels for CPython 3.11).
OPTIMIZER = "onnxsim"


@contextlib.contextmanager
def _plain_grouped_conv():
    """Trace Keras convolutions as plain ``tf.nn.convolution`` ops while converting.

    On CPU, Keras's TensorFlow backend wraps grouped convolutions in an XLA-compiled function,
    which tf2onnx cannot look into (it leaves an unsupported ``StatefulPartitionedCall``). The
    plain op carries the groups in its kernel shape and converts to an ONNX ``Conv`` with
    ``group``; the parity check then verifies the result.
    """
    from keras_resnet_lab import _keras_compat

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        import tensorflow as tf

        return tf.nn.convolution(
            inputs, kernel, strides, padding.upper(),
            data_format=_keras_compat.tensorflow_data_format(data_format, len(inputs.shape)),
            dilations=dilation_rate)

    # A Keras without the TensorFlow backend's module: convert as is.
    with _keras_compat.replaced_tensorflow_conv(conv, missing_ok=True):
        yield


def name_batch_axis(proto, name=BATCH_AXIS):
    """Give the first axis of the graph input and of every graph output the one symbolic
    name ``name`` (tf2onnx names each one apart: ``unk__266``, ``unk__267``, ...), so tools see
    that they share the batch size. Axes with a fixed size are left alone.

    Example:
        >>> name_batch_axis(proto)  # doctest: +SKIP
        >>> proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param
        'batch'
    """
    for value in list(proto.graph.input) + list(proto.graph.output):
        tensor = value.type.tensor_type
        if tensor.HasField("shape") and len(tensor.shape.dim):
            dim = tensor.shape.dim[0]
            if not dim.HasField("dim_value"):
                dim.dim_param = name
    return proto


def _check(proto, what):
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as error:
        first = str(error).strip().splitlines()[0]
        raise ValueError(f"{what} fails onnx.checker: {first}") from error


def op_counts(proto):
    """``{op_type: count}`` of the graph's nodes."""
    return dict(sorted(collections.Counter(n.op_type for n in proto.graph.node).items()))


def _import_onnxsim():
    try:
        import onnxsim
    except ImportError as error:
        raise ImportError("optimize=True (--optimize) needs onnxsim: pip install "
                          "'onnxsim>=0.8,<0.9'") from error
    return onnxsim


def optimize_graph(proto):
    """Simplify the converted graph with onnxsim; return ``(proto, summary)``.

    tf2onnx computes in NCHW: it transposes the stem's and every block's NCHW result to NHWC for
    the graph output, and that NHWC tensor back to NCHW for the next block. onnxsim fuses each
    such NCHW -> NHWC -> NCHW round trip, so the next block reads the NCHW result directly;
    the Transpose to each NHWC graph output stays (the outputs keep their names, order, layout
    and values), and constants are folded. Its own bookkeeping entries (``onnxsim.*``) are
    dropped from the metadata; the input and output names are checked to be unchanged and the
    graph is checked again with ``onnx.checker`` (full check).

    Returns:
        the simplified ModelProto and ``{"tool", "version", "nodes_before", "nodes_after",
        "transpose_before", "transpose_after", "changed_ops"}`` (``changed_ops``:
        ``{op_type: [before, after]}`` for each op type whose count changed).

    Raises:
        ImportError: onnxsim is not installed (``pip install onnxsim``).
        ValueError: onnxsim could not verify the simplified graph, changed its input or
            output names, or the result fails the checker.

    Example:
        >>> proto, summary = optimize_graph(convert(*features_model(model)))  # doctest: +SKIP
        >>> summary["transpose_after"] < summary["transpose_before"]  # doctest: +SKIP
        True
    """
    onnxsim = _import_onnxsim()
    before = op_counts(proto)
    simplified, verified = onnxsim.simplify(proto)
    if not verified:
        raise ValueError("onnxsim could not verify the simplified ONNX graph against the "
                         "original; export without optimize.")
    keep = [(p.key, p.value) for p in simplified.metadata_props
            if not p.key.startswith("onnxsim.")]
    del simplified.metadata_props[:]
    for key, value in keep:
        entry = simplified.metadata_props.add()
        entry.key, entry.value = key, value
    names = [[v.name for v in g] for g in (proto.graph.input, proto.graph.output)]
    got = [[v.name for v in g] for g in (simplified.graph.input, simplified.graph.output)]
    if got != names:
        raise ValueError(f"onnxsim changed the graph's inputs/outputs from {names} to {got}; "
                         "export without optimize.")
    name_batch_axis(simplified)
    _check(simplified, "the graph simplified by onnxsim")
    after = op_counts(simplified)
    changed = {op: [before.get(op, 0), after.get(op, 0)] for op in sorted({*before, *after})
               if before.get(op, 0) != after.get(op, 0)}
    return simplified, {"tool": OPTIMIZER,
                        "version": str(getattr(onnxsim, "__version__", "")).lstrip("v") or None,
                        "nodes_before": sum(before.values()),
                        "nodes_after": sum(after.values()),
                        "transpose_before": before.get("Transpose", 0),
                        "transpose_after": after.get("Transpose", 0),
                        "changed_ops": changed}


def convert(features, outputs, opset=DEFAULT_OPSET):
    """Convert the Keras features model to an ONNX ``ModelProto`` and check it.

    The graph input is ``input``; the graph outputs are named as ``outputs``; the batch axis
    of all of them is the symbolic dimension ``batch``.
    A short manifest (output names, roles, block indices) goes into the model's metadata, so
    tools like Netron show it. ``onnx.checker.check_model(full_check=True)`` must pass.

    Args:
        features: the Keras features model (:func:`~keras_resnet_lab.export.features_model`).
        outputs: its output list.
        opset: ONNX opset (9-18).

    Example:
        >>> proto = convert(*features_model(model))  # doctest: +SKIP
        >>> [o.name for o in proto.graph.output][:2]  # doctest: +SKIP
        ['stem', 'stage1_block1']
    """
    import tf2onnx

    with _plain_grouped_conv():
        proto, _ = tf2onnx.convert.from_keras(features, input_signature=(input_spec(features),),
                                              opset=opset)
    got = [o.name for o in proto.graph.output]
    wanted = [o.name for o in outputs]
    if got != wanted:
        raise ValueError(f"cannot convert model '{features.name}' to ONNX: the converter "
                         f"named the outputs {got}, expected {wanted}.")
    name_batch_axis(proto)
    summary = [{"name": o.name, "role": o.role, "block_index": o.block_index,
                "stage": o.stage, "block": o.block} for o in outputs]
    entry = proto.metadata_props.add()
    entry.key, entry.value = "keras_resnet_lab.outputs", json.dumps(summary)
    proto.doc_string = ("keras_resnet_lab export: outputs are 'stem', each block "
                        "'stage{s}_block{b}', and 'output'; see manifest.json.")
    _check(proto, f"cannot convert model '{features.name}' to ONNX (opset {opset}): the "
                  "converted graph")
    return proto


def onnx_outputs(path, x):
    """Run the ONNX file at ``path`` on ``x`` with onnxruntime (CPU): ``{name: array}``.

    Args:
        path: the ``.onnx`` file.
        x: an input batch (numpy, the model's dtype).

    Example:
        >>> onnx_outputs("exports/onnx/model.onnx", x)["stem"].shape  # doctest: +SKIP
        (8, 32, 32, 16)
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {session.get_inputs()[0].name: x})))


def export_onnx(model, path, *, intermediate=True, opset=DEFAULT_OPSET, overwrite=False,
                tolerance=DEFAULT_TOLERANCE, sample=None, batch_size=DEFAULT_BATCH,
                preprocessing=None, optimize=False):
    """Write ``model`` as an ONNX artifact folder: ``model.onnx`` and ``manifest.json``.

    The graph's input is ``input`` (NHWC for images, dynamic batch axis); its outputs are, in
    chain order, ``stem`` (the first block's input), every block's output named after the block
    (``stage1_block1``, ...) and ``output`` (the model's output) — only ``output`` with
    ``intermediate=False``; the input and every output name their batch axis ``batch``.
    With ``optimize`` the graph is simplified with onnxsim (the NCHW -> NHWC -> NCHW Transpose
    round trip after each named output removed, constants folded; see :func:`optimize_graph`)
    before it is checked and measured. The file is built in a temporary folder next to
    ``path``, checked with ``onnx.checker`` (full check) and run with onnxruntime on a batch;
    only if every output's max abs diff against Keras is within ``tolerance`` is it renamed onto
    ``path``.

    Args:
        model: a model of this library (any builder), converted from keras.applications, or
            loaded from a ``.keras`` file: a chain ``stem -> blocks -> head``.
        path: the artifact folder to create.
        intermediate: also output the stem and every block.
        opset: ONNX opset, 9 to 18 (what tf2onnx supports).
        overwrite: replace an existing ``path`` (atomically).
        tolerance: the largest allowed max abs diff between artifact and Keras, per output,
            relative to the output's largest magnitude where that exceeds 1 (see
            :class:`~keras_resnet_lab.export.ParityReport`).
        sample: optional input batch for the parity check (default: fixed-seed random normal).
        batch_size: size of the random parity batch.
        preprocessing: how to turn an image into the input, recorded in the manifest.
        optimize: simplify the graph with onnxsim (recorded in the manifest's
            ``artifact.optimization``: node and Transpose counts before and after).

    Returns:
        the :class:`~keras_resnet_lab.export.manifest.Manifest` written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ImportError: ``optimize`` without onnxsim installed.
        ExportParityError: parity above ``tolerance`` (nothing is left behind).
        ValueError / PermissionError: unsupported model, bad argument, unwritable path.

    Example:
        >>> manifest = export_onnx(cifar_resnet(20), "exports/resnet20_onnx")  # doctest: +SKIP

    Paper: He et al., arXiv 1512.03385 (the networks exported).
    """
    return _atomic.write_artifact(model, path, overwrite, lambda tmp, target: stage_onnx(
        model, tmp, target, intermediate=intermediate, opset=opset, tolerance=tolerance,
        sample=sample, batch_size=batch_size, preprocessing=preprocessing, optimize=optimize))


def stage_onnx(model, tmp, target, *, intermediate=True, opset=DEFAULT_OPSET,
               tolerance=DEFAULT_TOLERANCE, sample=None, batch_size=DEFAULT_BATCH,
               preprocessing=None, optimize=False):
    """Write and verify the ONNX file and its manifest in the staging folder ``tmp``.

    The building block of :func:`export_onnx` and :func:`~keras_resnet_lab.export.
    export_model`, which own the staging folder and the final rename.

    Args:
        model: the model to export.
        tmp: an empty staging folder.
        target: the final path (used in messages only).
        intermediate, opset, tolerance, sample, batch_size, preprocessing, optimize: as in
            :func:`export_onnx`.

    Returns:
        the Manifest; raises ExportParityError when the check fails.

    Example:
        >>> stage_onnx(model, "/tmp/.onnx-1.tmp", "/tmp/onnx")  # doctest: +SKIP
    """
    one_of("opset", opset, OPSETS)
    number_in("tolerance", tolerance, 0.0)
    optimize = boolean("optimize", optimize)
    if optimize:
        _import_onnxsim()  # fail before converting
    features, outputs, x, description = staging_inputs(
        model, intermediate=bool(intermediate), preprocessing=preprocessing, sample=sample,
        batch_size=batch_size)
    proto = convert(features, outputs, opset)
    optimization = None
    if optimize:
        proto, optimization = optimize_graph(proto)
    file = os.path.join(tmp, ONNX_FILE)
    with open(file, "wb") as handle:
        handle.write(proto.SerializeToString())
    reference = run_features(features, outputs, x)
    report = compare("onnx", reference, onnx_outputs(file, x), tolerance, x.shape[0],
                     description)
    require(report, outputs, target)
    artifact = {"format": "onnx", "file": ONNX_FILE, "opset": int(opset),
                "intermediate": bool(intermediate), "input_name": INPUT,
                "output_names": [o.name for o in outputs], "batch_axis": BATCH_AXIS,
                "optimization": optimization}
    manifest = build_manifest(model, outputs, artifact, report, preprocessing,
                              extra_versions=("tf2onnx", "onnx", "onnxruntime")
                              + (("onnxsim",) if optimize else ()))
    manifest.to_json(os.path.join(tmp, MANIFEST_NAME))
    return manifest
