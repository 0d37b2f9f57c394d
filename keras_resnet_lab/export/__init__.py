"""Deployable artifacts with every block's output, verified against Keras at export time.

- :func:`export_savedmodel`: SavedModel with ``serve`` and ``features`` signatures.
- :func:`export_onnx`: ONNX with the stem, every block and the output as named graph outputs.
- :func:`export_model`: several formats at once, all-or-nothing.
- :func:`features_model`: the multi-output Keras model the artifacts are built from.
- :class:`Manifest` / :func:`load_manifest`: the ``manifest.json`` next to each artifact.

Example:
    >>> from keras_resnet_lab.export import export_onnx
    >>> manifest = export_onnx(model, "exports/onnx")  # doctest: +SKIP
    >>> manifest.parity["worst_diff"] < 1e-4  # doctest: +SKIP
    True
"""

from keras_resnet_lab.export.bundle import FORMATS, export_model
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
from keras_resnet_lab.export.onnx import DEFAULT_OPSET, ONNX_FILE, OPSETS, export_onnx
from keras_resnet_lab.export.parity import (
    DEFAULT_TOLERANCE,
    ExportParityError,
    ParityReport,
    parity_batch,
)
from keras_resnet_lab.export.savedmodel import FEATURES, SERVE, export_savedmodel

__all__ = [
    "DEFAULT_OPSET", "DEFAULT_TOLERANCE", "FEATURES", "FORMATS", "MANIFEST_NAME", "ONNX_FILE",
    "OPSETS", "OUTPUT", "SERVE", "STEM", "ExportParityError", "FeatureOutput", "Manifest",
    "ParityReport", "export_model", "export_onnx", "export_savedmodel", "feature_tensors",
    "features_model", "load_manifest", "parity_batch", "preprocessing_spec",
]
