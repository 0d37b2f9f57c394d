"""Export several formats at once, all-or-nothing: ``DIR/savedmodel`` and ``DIR/onnx``."""

import contextlib
import os

from keras_resnet_lab._checks import one_of
from keras_resnet_lab.export import _atomic
from keras_resnet_lab.export.onnx import DEFAULT_OPSET, stage_onnx
from keras_resnet_lab.export.parity import DEFAULT_BATCH, DEFAULT_TOLERANCE
from keras_resnet_lab.export.savedmodel import stage_savedmodel
from keras_resnet_lab.outdir import folder_lock

FORMATS = ("savedmodel", "onnx")


def export_model(model, out_dir, formats=FORMATS, *, intermediate=True, opset=DEFAULT_OPSET,
                 overwrite=False, tolerance=DEFAULT_TOLERANCE, sample=None,
                 batch_size=DEFAULT_BATCH, preprocessing=None):
    """Write ``model`` in each of ``formats`` under ``out_dir`` (``out_dir/<format>``).

    Every artifact is built and parity-checked in a staging folder first; only when all of
    them pass are they renamed into place, so a failure leaves nothing behind.

    Args:
        model: an exportable model (see :func:`~keras_resnet_lab.export.export_onnx`).
        out_dir: the folder to write ``savedmodel/`` and/or ``onnx/`` into.
        formats: a subset of ``("savedmodel", "onnx")``.
        intermediate: ONNX only: also output the stem and every block (the SavedModel always
            has its ``features`` endpoint).
        opset, overwrite, tolerance, sample, batch_size, preprocessing: as in
            :func:`~keras_resnet_lab.export.export_onnx`.

    Returns:
        ``{format: Manifest}``.

    Example:
        >>> manifests = export_model(cifar_resnet(20), "exports/resnet20")  # doctest: +SKIP
        >>> sorted(manifests)
        ['onnx', 'savedmodel']

    Paper: He et al., arXiv 1512.03385 (the networks exported).
    """
    if isinstance(formats, str):
        formats = (formats,)
    formats = tuple(dict.fromkeys(one_of("formats", f, FORMATS) for f in formats))
    if not formats:
        raise ValueError(f"`formats` must name at least one of {', '.join(FORMATS)}.")
    targets = {f: _atomic.check_target(os.path.join(os.fspath(out_dir), f), overwrite)
               for f in formats}
    _atomic.check_room(model, list(targets.values()))
    common = dict(tolerance=tolerance, sample=sample, batch_size=batch_size,
                  preprocessing=preprocessing)
    manifests = {}
    with contextlib.ExitStack() as stack:
        staged = {f: stack.enter_context(_atomic.staging_dir(targets[f])) for f in formats}
        # The folder itself is locked too: a second export into it (of any format) is
        # refused at once.
        stack.enter_context(folder_lock(os.path.dirname(targets[formats[0]]), what="--out"))
        for f in formats:
            if f == "savedmodel":
                manifests[f] = stage_savedmodel(model, staged[f], targets[f], **common)
            else:
                manifests[f] = stage_onnx(model, staged[f], targets[f],
                                          intermediate=intermediate, opset=opset, **common)
        for f in formats:
            _atomic.commit(staged[f], targets[f], overwrite)
    return manifests
