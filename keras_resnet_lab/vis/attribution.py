"""Where a residual network looks: saliency / SmoothGrad and Grad-CAM / Grad-CAM++ / Score-CAM
at any block, as one-call adapters over tf-keras-vis.

The CAM methods are aimed at a *block* (a ``stage{s}_block{b}`` layer, by name or index) rather
than at a convolution: tf-keras-vis is told ``penultimate_layer=<block name>`` with
``seek_penultimate_conv_layer=False`` (otherwise it silently walks back to the last built-in
Conv2D), and runs on a clone whose classifier is made linear (``ReplaceToLinear``) so the scores
are logits whether the model ends in softmax or not, and the user's model is left untouched.
"""

import dataclasses

import numpy as np

from keras_resnet_lab._checks import one_of, positive_int
from keras_resnet_lab.models.chain import find_block
from keras_resnet_lab.vis import _tkv
from keras_resnet_lab.vis._checks import (
    as_images,
    check_finite_model,
    check_indices,
    check_seed,
    integer,
    number_in,
)
from keras_resnet_lab.vis.plotting import VisResult, image_grid

__all__ = ["CAM_METHODS", "AttributionMaps", "cam", "saliency"]

#: The class-activation-map methods of :func:`cam`.
CAM_METHODS = ("gradcam", "gradcam++", "scorecam")

_TITLES = {"saliency": "Saliency", "smoothgrad": "SmoothGrad", "gradcam": "Grad-CAM",
           "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM"}


@dataclasses.dataclass
class AttributionMaps(VisResult):
    """Attribution maps of a batch of images: what each image's class score depends on.

    Attributes:
        model_name: the model explained.
        method: ``"saliency"``, ``"smoothgrad"``, ``"gradcam"``, ``"gradcam++"`` or
            ``"scorecam"``.
        block: the block the CAM was taken at (None for saliency).
        class_indices: the class explained, per image.
        predicted: the model's predicted class, per image.
        images: the input images ``(N, H, W, C)``.
        maps: the maps, ``(N, H, W)``, each scaled to [0, 1] (tf-keras-vis normalization);
            the input's spatial shape.
        output_activation: the activation the model's classifier had (the maps always use
            the pre-activation scores).
    """

    model_name: str
    method: str
    block: object
    class_indices: list
    predicted: list
    images: np.ndarray
    maps: np.ndarray
    output_activation: str = "linear"

    def to_dict(self, include_arrays=False):
        """The result as JSON-ready data (maps and images only with ``include_arrays``)."""
        data = {
            "model": self.model_name, "method": self.method, "block": self.block,
            "class_indices": [int(c) for c in self.class_indices],
            "predicted": [int(c) for c in self.predicted],
            "output_activation": self.output_activation,
            "map_shape": list(self.maps.shape),
            "map_mean": [float(m.mean()) for m in self.maps],
        }
        if include_arrays:
            data["maps"] = np.round(self.maps, 6).tolist()
            data["images"] = np.round(self.images, 6).tolist()
        return data

    def title(self):
        """The figure title: method, model, block and what the class indices mean."""
        where = f" at block '{self.block}'" if self.block else " (input gradient)"
        return f"{_TITLES[self.method]} of model '{self.model_name}'{where}"

    def figure(self, max_columns=8):
        """The grid: each image above its map (overlaid on it); ``plot(path, max_columns=8)``
        writes it as PNG."""
        max_columns = positive_int("max_columns", max_columns)
        panels, overlays, titles, labels = [], [], [], []
        for start in range(0, len(self.images), max_columns):
            stop = min(start + max_columns, len(self.images))
            panels.append([self.images[i] for i in range(start, stop)])
            overlays.append([None] * (stop - start))
            titles.append([f"#{i}: class {self.class_indices[i]}\n(predicted {self.predicted[i]})"
                           for i in range(start, stop)])
            labels.append("input")
            panels.append([self.images[i] for i in range(start, stop)])
            overlays.append([self.maps[i] if self.maps.ndim == 3 else None
                             for i in range(start, stop)])
            titles.append([""] * (stop - start))
            labels.append(_TITLES[self.method])
        if self.maps.ndim != 3:  # vector inputs: show the map itself as a strip
            panels[1::2] = [[self.maps[i] for i in range(s, min(s + max_columns, len(self.maps)))]
                            for s in range(0, len(self.maps), max_columns)]
        return image_grid(panels, titles, self.title(), labels, overlays)


def _explained_classes(model, x, class_index):
    """(class per image, predicted class per image)."""
    predicted = np.argmax(np.asarray(model([x], training=False)), axis=-1).astype(int).tolist()
    if class_index is None:
        return predicted, predicted
    classes = _tkv.num_classes(model)
    chosen = check_indices("class_index", class_index, classes,
                           f"the model has {classes} classes", count=len(x))
    return chosen, predicted


def saliency(model, images, class_index=None, smooth_samples=0, smooth_noise=0.2, seed=0,
             path=None):
    """Saliency maps (|d score / d input|), or SmoothGrad with ``smooth_samples > 0``.

    Uses tf-keras-vis ``Saliency`` on a clone of the model with a linear classifier.

    Args:
        model: a classifier (one input, output ``(batch, classes)``, logits or softmax).
        images: ``(N, H, W, C)`` or one ``(H, W, C)`` image of *exactly* the model's input
            shape (other sizes are rejected; see :func:`keras_resnet_lab.vis.resize_images`).
        class_index: the class to explain: None (each image's predicted class), an int, or
            one int per image, in ``[0, classes)``.
        smooth_samples: 0 for vanilla saliency; > 0 for SmoothGrad with that many noisy
            copies (Smilkov et al., arXiv 1706.03825).
        smooth_noise: SmoothGrad noise, as a fraction of each image's value range.
        seed: seed of the SmoothGrad noise (None: unseeded).
        path: if given, a PNG grid is written there.

    Returns:
        :class:`AttributionMaps` with ``maps`` of shape ``(N, H, W)`` in [0, 1].

    Example:
        >>> result = saliency(model, x_test[:4], smooth_samples=16, path="saliency.png")

    Paper: Simonyan et al., arXiv 1312.6034.
    """
    smooth_samples = integer("smooth_samples", smooth_samples, 0)
    number_in("smooth_noise", smooth_noise, 0.0, None, low_open=True)
    seed = check_seed(seed)
    net = _tkv.classifier(model)
    x = as_images(model, images)
    check_finite_model(net, x)
    classes, predicted = _explained_classes(net, x, class_index)
    lib = _tkv.tkv()
    vis = lib.Saliency(net, model_modifier=_tkv.linear_modifier(), clone=True)
    with _tkv.numpy_seed(seed):  # gradients on an even batch: see _tkv.even_batch
        maps = vis(lib.CategoricalScore(_tkv.even_list(classes)), _tkv.even_batch(x),
                   smooth_samples=smooth_samples, smooth_noise=float(smooth_noise),
                   keepdims=x.ndim == 2)
    maps = np.asarray(maps, dtype=np.float32)[:len(x)]
    maps = maps.reshape(x.shape[:-1] if x.ndim > 2 else x.shape)
    result = AttributionMaps(model.name, "smoothgrad" if smooth_samples else "saliency", None,
                             classes, predicted, x, maps, _tkv.output_activation(net))
    if path is not None:
        result.plot(path)
    return result


def cam(model, images, class_index=None, block=-1, method="gradcam", scorecam_max_n=None,
        path=None):
    """Class activation maps at one block: Grad-CAM, Grad-CAM++ or Score-CAM (tf-keras-vis).

    The map is computed from the block's output (``block.output``, i.e. shortcut + branch) and
    upsampled to the input size.

    Args:
        model: a classifier built by this library (or converted from keras.applications).
        images: ``(N, H, W, C)`` or one image, of exactly the model's input shape (other sizes
            are rejected; see :func:`keras_resnet_lab.vis.resize_images`).
        class_index: None (each image's predicted class), an int, or one int per image.
        block: a block name (``"stage3_block2"``) or index (default -1, the last block).
        method: ``"gradcam"`` (Selvaraju et al., arXiv 1610.02391), ``"gradcam++"``
            (Chattopadhyay et al., arXiv 1710.11063) or ``"scorecam"`` (Wang et al.,
            arXiv 1910.01279).
        scorecam_max_n: Score-CAM only: use the ``n`` highest-variance channels (Faster
            Score-CAM); None uses them all.
        path: if given, a PNG grid is written there.

    Returns:
        :class:`AttributionMaps` with ``maps`` of shape ``(N, H, W)`` in [0, 1].

    Raises:
        ValueError: unknown block (the message lists the valid ones), a block without spatial
            output (dense form), images of the wrong shape, class index out of range.

    Example:
        >>> result = cam(model, x_test[:8], block="stage2_block1", method="gradcam++")
    """
    one_of("method", method, CAM_METHODS)
    net = _tkv.classifier(model)
    info = find_block(model, block)
    out_shape = tuple(info.layer.output.shape)
    if len(out_shape) != 4:
        raise ValueError(f"class activation maps need a block with a spatial output (batch, "
                         f"height, width, channels); block '{info.name}' of '{model.name}' "
                         f"outputs {out_shape}. Use saliency() for this model.")
    if scorecam_max_n is not None:
        scorecam_max_n = positive_int("scorecam_max_n", scorecam_max_n)
        scorecam_max_n = min(scorecam_max_n, int(out_shape[-1]))
    x = as_images(model, images)
    check_finite_model(net, x)
    classes, predicted = _explained_classes(net, x, class_index)
    lib = _tkv.tkv()
    cls = {"gradcam": lib.Gradcam, "gradcam++": lib.GradcamPlusPlus,
           "scorecam": lib.Scorecam}[method]
    vis = cls(net, model_modifier=_tkv.linear_modifier(), clone=True)
    kwargs = dict(penultimate_layer=info.name, seek_penultimate_conv_layer=False)
    if method == "scorecam":
        import functools

        # Score-CAM predicts on every masked input; keep Keras's progress bar quiet.
        vis.model.predict = functools.partial(vis.model.predict, verbose=0)
        kwargs["max_N"] = scorecam_max_n
    # gradients on an even batch: see _tkv.even_batch
    maps = vis(lib.CategoricalScore(_tkv.even_list(classes)), _tkv.even_batch(x), **kwargs)
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32)[:len(x)].reshape(x.shape[:3]))
    result = AttributionMaps(model.name, method, info.name, classes, predicted, x, maps,
                             _tkv.output_activation(net))
    if path is not None:
        result.plot(path)
    return result
