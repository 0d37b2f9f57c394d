"""LiteRT (TensorFlow Lite) export: one ``features`` signature whose outputs are named after the
blocks (plus ``stem`` and ``output``), NHWC, dynamic batch axis; float32, or dynamic-range int8
weights with ``quantize=True``.

The converter is given a SavedModel holding only the ``features`` signature: converting the
two-signature SavedModel keeps only ``serving_default`` with one output (silently), and
``TFLiteConverter.from_keras_model`` renames a multi-output model's outputs ``output_0, ...``.
Parity is measured with the LiteRT interpreter (``ai_edge_litert``), reading outputs by name
through the signature runner.
"""

import os
import shutil

from keras_resnet_lab._checks import boolean, number_in
from keras_resnet_lab.export import _atomic
from keras_resnet_lab.export.features import (
    INPUT,
    OUTPUT,
    feature_values,
    input_spec,
    run_features,
    staging_inputs,
)
from keras_resnet_lab.export.manifest import MANIFEST_NAME, build_manifest

# Grouped convolutions traced as plain ops, as for ONNX (the converter cannot look into the
# XLA-compiled function Keras wraps them in on CPU).
from keras_resnet_lab.export.onnx import _plain_grouped_conv
from keras_resnet_lab.export.parity import (
    DEFAULT_BATCH,
    DEFAULT_MIN_AGREEMENT,
    DEFAULT_TOLERANCE,
    QUANTIZED_BATCH,
    compare,
    judge_agreement,
    require,
)

TFLITE_FILE = "model.tflite"
#: The one signature of the artifact (its outputs: stem, every block, output).
SIGNATURE = "features"
#: ``artifact.quantization`` of the manifest: float32, or int8 weights (dynamic range).
QUANTIZATIONS = ("none", "dynamic_range_int8")
_SCRATCH = ".features_savedmodel"


def _litert():
    """The LiteRT interpreter class (ImportError saying what to install without it)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:
        raise ImportError("the LiteRT export checks parity with the LiteRT interpreter: pip "
                          "install 'ai-edge-litert>=2.0,<3'") from error
    return Interpreter


def _interpreter(model_path=None, model_content=None):
    return _litert()(model_path=model_path, model_content=model_content)


def convert_tflite(features, outputs, scratch, quantize=False):
    """Convert the Keras features model to a LiteRT flatbuffer (bytes) and check its names.

    Args:
        features: the Keras features model (:func:`~keras_resnet_lab.export.features_model`).
        outputs: its output list.
        scratch: a folder to create for the intermediate one-signature SavedModel (removed
            by the caller).
        quantize: dynamic-range quantization (``tf.lite.Optimize.DEFAULT``, no representative
            dataset): weights stored as int8, activations computed in float.

    Raises:
        ValueError: the flatbuffer's ``features`` signature does not have the expected input
            and output names.

    Example:
        >>> flat = convert_tflite(*features_model(model), "/tmp/scratch")  # doctest: +SKIP
    """
    import keras
    import tensorflow as tf

    names = [o.name for o in outputs]

    def feature_dict(x):
        return feature_values(features, outputs, x)

    archive = keras.export.ExportArchive()
    archive.track(features)
    with _plain_grouped_conv():
        archive.add_endpoint(SIGNATURE, feature_dict, input_signature=[input_spec(features)])
        archive.write_out(scratch, verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(scratch, signature_keys=[SIGNATURE])
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    flat = converter.convert()
    signatures = _interpreter(model_content=flat).get_signature_list()
    got = signatures.get(SIGNATURE, {})
    if list(signatures) != [SIGNATURE] or got.get("inputs") != [INPUT] \
            or sorted(got.get("outputs", [])) != sorted(names):
        raise ValueError(f"cannot convert model '{features.name}' to LiteRT: the converted "
                         f"signatures are {signatures}, expected {SIGNATURE!r} with input "
                         f"'input' and outputs {names}.")
    return flat


def _require_class_scores(model, outputs):
    """Refuse ``quantize`` for a model whose output is not class scores ``(batch, k >= 2)``:
    the int8 artifact is judged by its top-1 agreement with Keras."""
    shape = next(tuple(o.shape) for o in outputs if o.name == OUTPUT)
    if len(shape) != 2 or shape[1] is None or shape[1] < 2:
        raise ValueError(
            f"`quantize` needs a model whose output is class scores (batch, classes >= 2): the "
            f"int8 artifact is judged by the top-1 agreement of its '{OUTPUT}' with Keras's; "
            f"model '{model.name}' outputs shape {list(shape)}. Export it as float32 "
            "(quantize=False).")


def tflite_outputs(path, x):
    """Run the ``features`` signature of the LiteRT file at ``path`` on ``x``: ``{name: array}``.

    Args:
        path: the ``.tflite`` file.
        x: an input batch (numpy, the model's dtype); any batch size.

    Example:
        >>> tflite_outputs("exports/tflite/model.tflite", x)["stem"].shape  # doctest: +SKIP
        (8, 32, 32, 16)
    """
    import numpy as np

    runner = _interpreter(model_path=os.fspath(path)).get_signature_runner(SIGNATURE)
    return {name: np.array(value) for name, value in runner(input=x).items()}


def export_tflite(model, path, *, quantize=False, intermediate=True, overwrite=False,
                  tolerance=DEFAULT_TOLERANCE, min_agreement=DEFAULT_MIN_AGREEMENT, sample=None,
                  batch_size=None, preprocessing=None):
    """Write ``model`` as a LiteRT artifact folder: ``model.tflite`` and ``manifest.json``.

    The flatbuffer has one signature, ``features``, taking ``input`` (NHWC for images, dynamic
    batch axis) and returning, by name, ``stem``, every block's output (``stage1_block1``,
    ...) and ``output`` (only ``output`` with ``intermediate=False``). Read them by name with
    the LiteRT interpreter's signature runner (the interpreter's own output list is in no
    useful order and carries internal tensor names).

    float32 (default): the artifact passes when every output is within ``tolerance`` of Keras
    on the parity batch, as for the other formats. ``quantize=True``: dynamic-range int8
    (weights stored as int8, about 4x smaller; activations in float): it passes when the
    top-1 class of ``output`` agrees with Keras on at least ``min_agreement`` of the parity
    batch; the manifest records that agreement, the logits drift ``max|lite - keras| /
    max|keras|``, every output's diff and the file size. Below it, nothing is written. Only a
    model whose output is class scores ``(batch, classes >= 2)`` can be judged so: for other
    outputs ``quantize=True`` is refused before anything is converted.

    Built in a temporary folder next to ``path`` and renamed onto it only when the check
    passes; ``overwrite`` replaces only an earlier artifact of ours.

    Args:
        model: a model of this library (any builder), converted from keras.applications, or
            loaded from a ``.keras`` file: a chain ``stem -> blocks -> head``.
        path: the artifact folder to create.
        quantize: dynamic-range int8 quantization.
        intermediate: also output the stem and every block.
        overwrite: replace an existing ``path`` (atomically).
        tolerance: float32 only: the largest allowed max abs diff per output, relative to the
            output's largest magnitude where that exceeds 1.
        min_agreement: int8 only: the least top-1 agreement with Keras on the parity batch
            (default 0.9).
        sample: optional input batch for the check (default: fixed-seed random normal). For
            int8, real examples make the agreement meaningful.
        batch_size: size of the random parity batch; None: 8, or 32 with ``quantize`` (an
            agreement over 8 examples moves in steps of 1/8: below 0.9 at one disagreement).
        preprocessing: how to turn an image into the input, recorded in the manifest.

    Returns:
        the :class:`~keras_resnet_lab.export.manifest.Manifest` written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ExportParityError: the check failed (nothing is left behind).
        ImportError: ``ai-edge-litert`` (the LiteRT interpreter) is not installed.
        ValueError / PermissionError: unsupported model, bad argument (``quantize`` for a model
            whose output is not class scores), unwritable path.

    Example:
        >>> manifest = export_tflite(cifar_resnet(20), "exports/tflite", quantize=True)
        ... # doctest: +SKIP
        >>> manifest.parity["top1_agreement"]  # doctest: +SKIP
        1.0

    Paper: He et al., arXiv 1512.03385 (the networks exported).
    """
    # the converter writes a scratch SavedModel beside the flatbuffer: room for two copies
    return _atomic.write_artifact(model, path, overwrite, lambda tmp, target: stage_tflite(
        model, tmp, target, quantize=quantize, intermediate=intermediate, tolerance=tolerance,
        min_agreement=min_agreement, sample=sample, batch_size=batch_size,
        preprocessing=preprocessing), copies=2)


def stage_tflite(model, tmp, target, *, quantize=False, intermediate=True,
                 tolerance=DEFAULT_TOLERANCE, min_agreement=DEFAULT_MIN_AGREEMENT, sample=None,
                 batch_size=None, preprocessing=None):
    """Write and verify the LiteRT file and its manifest in the staging folder ``tmp``.

    The building block of :func:`export_tflite` and :func:`~keras_resnet_lab.export.
    export_model`, which own the staging folder and the final rename.

    Args:
        model: the model to export.
        tmp: an empty staging folder.
        target: the final path (used in messages only).
        quantize, intermediate, tolerance, min_agreement, sample, batch_size, preprocessing:
            as in :func:`export_tflite`.

    Returns:
        the Manifest; raises ExportParityError when the check fails.

    Example:
        >>> stage_tflite(model, "/tmp/.tflite-1.tmp", "/tmp/tflite")  # doctest: +SKIP
    """
    quantize = boolean("quantize", quantize)
    number_in("tolerance", tolerance, 0.0)
    number_in("min_agreement", min_agreement, 0.0, 1.0)
    _litert()  # a missing interpreter is said before anything is converted
    if batch_size is None:
        batch_size = QUANTIZED_BATCH if quantize else DEFAULT_BATCH
    features, outputs, x, description = staging_inputs(
        model, intermediate=boolean("intermediate", intermediate), preprocessing=preprocessing,
        sample=sample, batch_size=batch_size)
    if quantize:
        _require_class_scores(model, outputs)
    scratch = os.path.join(tmp, _SCRATCH)
    try:
        flat = convert_tflite(features, outputs, scratch, quantize=quantize)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    file = os.path.join(tmp, TFLITE_FILE)
    with open(file, "wb") as handle:
        handle.write(flat)
    reference = run_features(features, outputs, x)
    candidate = tflite_outputs(file, x)
    report = compare("tflite", reference, candidate, tolerance, x.shape[0], description)
    if quantize:
        report = judge_agreement(report, reference, candidate, min_agreement)
    require(report, outputs, target)
    artifact = {"format": "tflite", "file": TFLITE_FILE, "signature": SIGNATURE,
                "intermediate": bool(intermediate), "input_name": INPUT,
                "output_names": [o.name for o in outputs], "batch_axis": "dynamic",
                "quantization": QUANTIZATIONS[bool(quantize)], "size_bytes": len(flat),
                "converter": "tf.lite.TFLiteConverter.from_saved_model, the 'features' "
                             "signature only"}
    manifest = build_manifest(model, outputs, artifact, report, preprocessing,
                              extra_versions=("ai_edge_litert",))
    manifest.to_json(os.path.join(tmp, MANIFEST_NAME))
    return manifest
