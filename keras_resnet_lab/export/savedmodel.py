"""SavedModel export: a ``serve`` endpoint (the model's output) and a ``features`` endpoint
(a dict with the stem, every block's output and the model's output), dynamic batch axis."""

import os

from keras_resnet_lab._checks import number_in
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
from keras_resnet_lab.export.parity import DEFAULT_BATCH, DEFAULT_TOLERANCE, compare, require

SERVE = "serve"
FEATURES = "features"


def write_savedmodel(model, features, outputs, path):
    """Write the two-endpoint SavedModel of ``model`` into the (empty) folder ``path``.

    No check, no manifest: :func:`export_savedmodel` is the safe entry point.

    Args:
        model: the Keras model (the ``serve`` endpoint).
        features: its features model (the ``features`` endpoint), from
            :func:`~keras_resnet_lab.export.features_model`.
        outputs: the features model's output list (the endpoint's keys).
        path: the folder.

    Example:
        >>> features, outputs = features_model(model)  # doctest: +SKIP
        >>> write_savedmodel(model, features, outputs, "/tmp/sm")  # doctest: +SKIP
    """
    import keras

    spec = input_spec(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(features)

    def serve(x):
        return {OUTPUT: model(x, training=False)}

    def feature_dict(x):
        return feature_values(features, outputs, x)

    archive.add_endpoint(SERVE, serve, input_signature=[spec])
    archive.add_endpoint(FEATURES, feature_dict, input_signature=[spec])
    archive.write_out(path, verbose=False)


def savedmodel_outputs(path, x):
    """Run both signatures of the SavedModel at ``path`` on ``x``, reading outputs by key.

    Args:
        path: the SavedModel folder.
        x: an input batch (numpy).

    Example:
        >>> sorted(savedmodel_outputs("exports/savedmodel", x))[:2]  # doctest: +SKIP
        ['output', 'serve/output']

    Returns:
        ``{name: array}`` for the ``features`` outputs and ``{"serve/output": array}``.
    """
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    tensor = tf.constant(x)
    found = {name: value.numpy()
             for name, value in loaded.signatures[FEATURES](input=tensor).items()}
    for name, value in loaded.signatures[SERVE](input=tensor).items():
        found[f"{SERVE}/{name}"] = value.numpy()
    return found


def export_savedmodel(model, path, *, overwrite=False, tolerance=DEFAULT_TOLERANCE, sample=None,
                      batch_size=DEFAULT_BATCH, preprocessing=None):
    """Write ``model`` as a SavedModel folder with ``serve`` and ``features`` signatures.

    ``serve`` returns ``{"output": y}``; ``features`` returns ``{"stem": ...,
    "stage1_block1": ..., ..., "output": ...}``. Signature outputs have no fixed order: read
    them by key. The input is called ``input`` and has a dynamic batch axis. A
    ``manifest.json`` (see :mod:`keras_resnet_lab.export.manifest`) is written inside the
    folder. The artifact is built in a temporary folder next to ``path``, reloaded and compared
    with the Keras model on a batch (every output); only if every max abs diff is within
    ``tolerance`` is it renamed onto ``path``.

    Args:
        model: a model of this library (any builder), converted from keras.applications, or
            loaded from a ``.keras`` file: a chain ``stem -> blocks -> head``.
        path: the SavedModel folder to create.
        overwrite: replace an existing ``path`` (atomically).
        tolerance: the largest allowed max abs diff between artifact and Keras, per output,
            relative to the output's largest magnitude where that exceeds 1 (see
            :class:`~keras_resnet_lab.export.ParityReport`).
        sample: optional input batch for the parity check (default: fixed-seed random normal).
        batch_size: size of the random parity batch.
        preprocessing: how to turn an image into the input, recorded in the manifest (see
            :func:`keras_resnet_lab.export.manifest.preprocessing_spec`).

    Returns:
        the :class:`~keras_resnet_lab.export.manifest.Manifest` written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ExportParityError: parity above ``tolerance`` (nothing is left behind).
        ValueError / PermissionError: unsupported model, bad argument, unwritable path.

    Example:
        >>> manifest = export_savedmodel(cifar_resnet(20), "exports/resnet20_sm")  # doctest: +SKIP

    Paper: He et al., arXiv 1512.03385 (the networks exported).
    """
    return _atomic.write_artifact(model, path, overwrite, lambda tmp, target: stage_savedmodel(
        model, tmp, target, tolerance=tolerance, sample=sample, batch_size=batch_size,
        preprocessing=preprocessing))


def stage_savedmodel(model, tmp, target, *, tolerance=DEFAULT_TOLERANCE, sample=None,
                     batch_size=DEFAULT_BATCH, preprocessing=None):
    """Write and verify the SavedModel and its manifest in the staging folder ``tmp``.

    The building block of :func:`export_savedmodel` and :func:`~keras_resnet_lab.export.
    export_model`, which own the staging folder and the final rename.

    Args:
        model: the model to export.
        tmp: an empty staging folder.
        target: the final path (used in messages only).
        tolerance, sample, batch_size, preprocessing: as in :func:`export_savedmodel`.

    Returns:
        the Manifest; raises ExportParityError when the check fails.

    Example:
        >>> stage_savedmodel(model, "/tmp/.sm-1.tmp", "/tmp/sm")  # doctest: +SKIP
    """
    number_in("tolerance", tolerance, 0.0)
    features, outputs, x, description = staging_inputs(
        model, intermediate=True, preprocessing=preprocessing, sample=sample,
        batch_size=batch_size)
    write_savedmodel(model, features, outputs, tmp)
    reference = run_features(features, outputs, x)
    report = compare("savedmodel", reference, savedmodel_outputs(tmp, x), tolerance,
                     x.shape[0], description)
    require(report, outputs, target)
    artifact = {"format": "savedmodel", "path": os.path.basename(target),
                "endpoints": {SERVE: [OUTPUT], FEATURES: [o.name for o in outputs]},
                "input_key": INPUT, "tags": ["serve"]}
    manifest = build_manifest(model, outputs, artifact, report, preprocessing)
    manifest.to_json(os.path.join(tmp, MANIFEST_NAME))
    return manifest
