"""Deployable artifacts with every block's output, verified against Keras at export time.

- :func:`export_savedmodel`: SavedModel with ``serve`` and ``features`` signatures.
- :func:`export_onnx`: ONNX with the stem, every block and the output as named graph outputs
  (``optimize=True``: simplified with onnxsim).
- :func:`export_tflite`: LiteRT flatbuffer with a ``features`` signature of the same named
  outputs; float32, or dynamic-range int8 with ``quantize=True``.
- :func:`export_model`: several formats at once, all-or-nothing.
- :func:`features_model`: the multi-output Keras model the artifacts are built from.
- :class:`Manifest` / :func:`load_manifest`: the ``manifest.json`` next to each artifact.

Example:
    >>> from keras_resnet_lab.export import export_onnx
    >>> manifest = export_onnx(model, "exports/onnx")  # doctest: +SKIP
    >>> manifest.parity["worst_diff"] < 1e-4  # doctest: +SKIP
    True
"""

from keras_resnet_lab.export.bundle import DEFAULT_FORMATS, FORMATS, export_model
from keras_resnet_lab.export.features import (
    OUTPUT,
    STEM,
    FeatureOutput,
    feature_tensors,
    features_model,
)
from keras_resnet_lab.export.manifest import (
    MANIFEST_NAME,
    Manifest,
    load_manifest,
    preprocessing_spec,
)
from keras_resnet_lab.export.onnx import (
    BATCH_AXIS,
    DEFAULT_OPSET,
    ONNX_FILE,
    OPSETS,
    export_onnx,
)
from keras_resnet_lab.export.parity import (
    DEFAULT_MIN_AGREEMENT,
    DEFAULT_TOLERANCE,
    ExportParityError,
    ParityReport,
    parity_batch,
)
from keras_resnet_lab.export.savedmodel import FEATURES, SERVE, export_savedmodel
from keras_resnet_lab.export.tflite import TFLITE_FILE, export_tflite

__all__ = [
    "BATCH_AXIS", "DEFAULT_FORMATS", "DEFAULT_MIN_AGREEMENT", "DEFAULT_OPSET",
    "DEFAULT_TOLERANCE", "FEATURES", "FORMATS", "MANIFEST_NAME", "ONNX_FILE", "OPSETS",
    "OUTPUT", "SERVE", "STEM", "TFLITE_FILE", "ExportParityError", "FeatureOutput", "Manifest",
    "ParityReport", "export_model", "export_onnx", "export_savedmodel", "export_tflite",
    "feature_tensors", "features_model", "load_manifest", "parity_batch", "preprocessing_spec",
]
