"""ONNX export: graph outputs named after the blocks (plus ``stem`` and ``output``), NHWC,
dynamic batch axis, converted with tf2onnx from the multi-output Keras features model."""

import contextlib
import json
import os

from keras_resnet_lab._checks import number_in, one_of
from keras_resnet_lab.export import _atomic
from keras_resnet_lab.export.features import features_model, run_features
from keras_resnet_lab.export.manifest import MANIFEST_NAME, build_manifest, preprocessing_spec
from keras_resnet_lab.export.parity import (
    DEFAULT_BATCH,
    DEFAULT_TOLERANCE,
    compare,
    parity_batch,
    require,
)

ONNX_FILE = "model.onnx"
OPSETS = tuple(range(9, 19))
DEFAULT_OPSET = 17


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


def convert(features, outputs, opset=DEFAULT_OPSET):
    """Convert the Keras features model to an ONNX ``ModelProto`` and check it.

    The graph input is ``input`` (dynamic batch); the graph outputs are named as ``outputs``.
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
    import keras
    import onnx
    import tensorflow as tf
    import tf2onnx

    inp = features.inputs[0]
    spec = (tf.TensorSpec(tuple(inp.shape), keras.backend.standardize_dtype(inp.dtype),
                          name="input"),)
    with _plain_grouped_conv():
        proto, _ = tf2onnx.convert.from_keras(features, input_signature=spec, opset=opset)
    got = [o.name for o in proto.graph.output]
    wanted = [o.name for o in outputs]
    if got != wanted:
        raise ValueError(f"cannot convert model '{features.name}' to ONNX: the converter "
                         f"named the outputs {got}, expected {wanted}.")
    summary = [{"name": o.name, "role": o.role, "block_index": o.block_index,
                "stage": o.stage, "block": o.block} for o in outputs]
    entry = proto.metadata_props.add()
    entry.key, entry.value = "keras_resnet_lab.outputs", json.dumps(summary)
    proto.doc_string = ("keras_resnet_lab export: outputs are 'stem', each block "
                        "'stage{s}_block{b}', and 'output'; see manifest.json.")
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as error:
        first = str(error).strip().splitlines()[0]
        raise ValueError(f"cannot convert model '{features.name}' to ONNX (opset {opset}): the "
                         f"converted graph fails onnx.checker: {first}") from error
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
                preprocessing=None):
    """Write ``model`` as an ONNX artifact folder: ``model.onnx`` and ``manifest.json``.

    The graph's input is ``input`` (NHWC for images, dynamic batch axis); its outputs are, in
    chain order, ``stem`` (the first block's input), every block's output named after the block
    (``stage1_block1``, ...) and ``output`` (the model's output) — only ``output`` with
    ``intermediate=False``. The file is built in a temporary folder next to ``path``, checked
    with ``onnx.checker`` (full check) and run with onnxruntime on a batch; only if every
    output's max abs diff against Keras is within ``tolerance`` is it renamed onto ``path``.

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

    Returns:
        the :class:`~keras_resnet_lab.export.manifest.Manifest` written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ExportParityError: parity above ``tolerance`` (nothing is left behind).
        ValueError / PermissionError: unsupported model, bad argument, unwritable path.

    Example:
        >>> manifest = export_onnx(cifar_resnet(20), "exports/resnet20_onnx")  # doctest: +SKIP

    Paper: He et al., arXiv 1512.03385 (the networks exported).
    """
    target = _atomic.check_target(path, overwrite)
    _atomic.check_room(model, [target])
    with _atomic.staging_dir(target) as tmp:
        manifest = stage_onnx(model, tmp, target, intermediate=intermediate, opset=opset,
                              tolerance=tolerance, sample=sample, batch_size=batch_size,
                              preprocessing=preprocessing)
        _atomic.commit(tmp, target, overwrite)
    return manifest


def stage_onnx(model, tmp, target, *, intermediate=True, opset=DEFAULT_OPSET,
               tolerance=DEFAULT_TOLERANCE, sample=None, batch_size=DEFAULT_BATCH,
               preprocessing=None):
    """Write and verify the ONNX file and its manifest in the staging folder ``tmp``.

    The building block of :func:`export_onnx` and :func:`~keras_resnet_lab.export.
    export_model`, which own the staging folder and the final rename.

    Args:
        model: the model to export.
        tmp: an empty staging folder.
        target: the final path (used in messages only).
        intermediate, opset, tolerance, sample, batch_size, preprocessing: as in
            :func:`export_onnx`.

    Returns:
        the Manifest; raises ExportParityError when the check fails.

    Example:
        >>> stage_onnx(model, "/tmp/.onnx-1.tmp", "/tmp/onnx")  # doctest: +SKIP
    """
    one_of("opset", opset, OPSETS)
    number_in("tolerance", tolerance, 0.0)
    features, outputs = features_model(model, intermediate=bool(intermediate))
    shape = tuple(model.inputs[0].shape)
    preprocessing_spec(preprocessing, shape[-1] or 1)
    import keras

    x, description = parity_batch(shape, keras.backend.standardize_dtype(model.inputs[0].dtype),
                                  sample, batch_size)
    proto = convert(features, outputs, opset)
    file = os.path.join(tmp, ONNX_FILE)
    with open(file, "wb") as handle:
        handle.write(proto.SerializeToString())
    reference = run_features(features, outputs, x)
    report = compare("onnx", reference, onnx_outputs(file, x), tolerance, x.shape[0],
                     description)
    require(report, outputs, target)
    artifact = {"format": "onnx", "file": ONNX_FILE, "opset": int(opset),
                "intermediate": bool(intermediate), "input_name": "input",
                "output_names": [o.name for o in outputs]}
    manifest = build_manifest(model, outputs, artifact, report, preprocessing,
                              extra_versions=("tf2onnx", "onnx", "onnxruntime"))
    manifest.to_json(os.path.join(tmp, MANIFEST_NAME))
    return manifest
