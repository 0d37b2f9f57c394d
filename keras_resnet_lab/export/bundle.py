"""Export several formats at once, all-or-nothing: ``DIR/savedmodel``, ``DIR/onnx`` and
``DIR/tflite``."""

import contextlib
import os

from keras_resnet_lab._checks import one_of
from keras_resnet_lab.export import _atomic
from keras_resnet_lab.export.onnx import DEFAULT_OPSET, stage_onnx
from keras_resnet_lab.export.parity import (
    DEFAULT_BATCH,
    DEFAULT_MIN_AGREEMENT,
    DEFAULT_TOLERANCE,
)
from keras_resnet_lab.export.savedmodel import stage_savedmodel
from keras_resnet_lab.export.tflite import stage_tflite
from keras_resnet_lab.outdir import folder_lock

#: Every format: each is written to ``out_dir/<format>``.
FORMATS = ("savedmodel", "onnx", "tflite")
#: What :func:`export_model` writes unless told otherwise (the CLI's ``--format both``).
DEFAULT_FORMATS = ("savedmodel", "onnx")


def export_model(model, out_dir, formats=DEFAULT_FORMATS, *, intermediate=True,
                 opset=DEFAULT_OPSET, overwrite=False, tolerance=DEFAULT_TOLERANCE, sample=None,
                 batch_size=None, preprocessing=None, optimize=False, quantize=False,
                 min_agreement=DEFAULT_MIN_AGREEMENT):
    """Write ``model`` in each of ``formats`` under ``out_dir`` (``out_dir/<format>``).

    Every artifact is built and parity-checked in a staging folder first; only when all of
    them pass are they renamed into place, so a failure leaves nothing behind.

    Args:
        model: an exportable model (see :func:`~keras_resnet_lab.export.export_onnx`).
        out_dir: the folder to write ``savedmodel/``, ``onnx/`` and/or ``tflite/`` into.
        formats: a subset of :data:`FORMATS` (default ``("savedmodel", "onnx")``).
        intermediate: ONNX and LiteRT: also output the stem and every block (the SavedModel
            always has its ``features`` endpoint).
        opset, overwrite, tolerance, sample, preprocessing, optimize: as in
            :func:`~keras_resnet_lab.export.export_onnx` (``optimize``: ONNX only).
        batch_size: size of the random parity batch; None: 8 (32 for an int8 LiteRT
            artifact, see :func:`~keras_resnet_lab.export.export_tflite`).
        quantize, min_agreement: LiteRT only, as in
            :func:`~keras_resnet_lab.export.export_tflite`.

    Returns:
        ``{format: Manifest}``.

    Example:
        >>> manifests = export_model(cifar_resnet(20), "exports/resnet20")  # doctest: +SKIP
        >>> sorted(manifests)
        ['onnx', 'savedmodel']
        >>> export_model(model, "exports/r20", formats=FORMATS, quantize=True)  # doctest: +SKIP

    Paper: He et al., arXiv 1512.03385 (the networks exported).
    """
    if isinstance(formats, str):
        formats = (formats,)
    formats = tuple(dict.fromkeys(one_of("formats", f, FORMATS) for f in formats))
    if not formats:
        raise ValueError(f"`formats` must name at least one of {', '.join(FORMATS)}.")
    for flag, value, needs in (("optimize", optimize, "onnx"), ("quantize", quantize, "tflite")):
        if value and needs not in formats:
            raise ValueError(f"`{flag}` applies to the {needs!r} format, which `formats` "
                             f"{formats} does not include.")
    targets = {f: _atomic.check_target(os.path.join(os.fspath(out_dir), f), overwrite)
               for f in formats}
    # The LiteRT export writes a scratch SavedModel beside its flatbuffer: room for two.
    _atomic.check_room(model, [targets[f] for f in formats
                               for _ in range(2 if f == "tflite" else 1)])
    common = dict(tolerance=tolerance, sample=sample, preprocessing=preprocessing)
    float_batch = DEFAULT_BATCH if batch_size is None else batch_size
    manifests = {}
    with contextlib.ExitStack() as stack:
        staged = {f: stack.enter_context(_atomic.staging_dir(targets[f])) for f in formats}
        # The folder itself is locked too: a second export into it (of any format) is
        # refused at once.
        stack.enter_context(folder_lock(os.path.dirname(targets[formats[0]]), what="--out"))
        for f in formats:
            if f == "savedmodel":
                manifests[f] = stage_savedmodel(model, staged[f], targets[f],
                                                batch_size=float_batch, **common)
            elif f == "onnx":
                manifests[f] = stage_onnx(model, staged[f], targets[f],
                                          intermediate=intermediate, opset=opset,
                                          optimize=optimize, batch_size=float_batch,
                                          **common)
            else:
                manifests[f] = stage_tflite(model, staged[f], targets[f], quantize=quantize,
                                            intermediate=intermediate,
                                            min_agreement=min_agreement,
                                            batch_size=batch_size, **common)
        for f in formats:
            _atomic.commit(staged[f], targets[f], overwrite)
    return manifests
