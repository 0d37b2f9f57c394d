"""What a model trained on a dataset of this package expects as input, as the export manifest's
preprocessing: ``x = (pixels * scale - mean) / std`` from an image's 0-255 pixels.

``train`` writes it beside ``model.keras`` (:data:`PREPROCESSING_FILE`), the lab passes it to
its export, and ``keras-resnet-lab export`` records it in every artifact's ``manifest.json``, so
a consumer (``export/inspect_onnx.py --image``) feeds an image file the way the model was
trained.
"""

from __future__ import annotations

import os

from keras_resnet_lab import catalog
from keras_resnet_lab.data import augment as aug
from keras_resnet_lab.data.digits import digits_preprocessing
from keras_resnet_lab.preprocessing_file import (  # noqa: F401  (part of this module's API)
    PREPROCESSING_FILE,
    read_preprocessing,
)

_TFDS = {
    "cifar10": (aug.CIFAR10_MEAN, aug.CIFAR10_STD, 32),
    "cifar100": (aug.CIFAR100_MEAN, aug.CIFAR100_STD, 32),
    "imagenet2012": (aug.IMAGENET_MEAN, aug.IMAGENET_STD, 224),
}


def dataset_preprocessing(name: str, image_size: int | None = None) -> dict:
    """The preprocessing of ``load_dataset(name, image_size=image_size)`` as a manifest dict.

    Digits: grey, standardized with the training split's statistics at that size
    (:func:`~keras_resnet_lab.data.digits_preprocessing`). CIFAR-10/100 and ImageNet: RGB,
    pixels / 255 standardized with the usual per-channel mean and std
    (:mod:`keras_resnet_lab.data.augment`); the description says how the image is resized or
    cropped first.

    Args:
        name: One of :data:`keras_resnet_lab.data.DATASETS`.
        image_size: The image size the model was trained at; None for the dataset's default.

    Returns:
        ``{"description", "scale", "mean", "std", "color"}``.

    Example:
        >>> dataset_preprocessing("cifar10")["mean"]
        [0.4914, 0.4822, 0.4465]
    """
    if name not in catalog.DATASETS:
        raise ValueError(f"name must be one of {catalog.DATASETS}, got {name!r}.")
    if name == "digits":
        return digits_preprocessing(32 if image_size is None else image_size, 3)
    mean, std, default = _TFDS[name]
    size = default if image_size is None else int(image_size)
    if name == "imagenet2012":
        resize = max(size, round(size * 256 / 224))
        geometry = (f"shorter side resized to {resize}, centre crop {size}x{size} (the "
                    "evaluation transform)")
    else:
        geometry = ("32x32 as stored" if size == 32 else
                    f"resized from 32x32 to {size}x{size} (antialiased bilinear)")
    return {"description": f"{name}: RGB, {geometry}; pixels / 255, standardized with the "
                           "dataset's per-channel mean and std",
            "scale": 1.0 / 255.0, "mean": [float(v) for v in mean],
            "std": [float(v) for v in std], "color": "rgb"}


def write_preprocessing(folder, spec) -> str:
    """Write ``spec`` to ``folder/preprocessing.json`` atomically; return the path.

    Example:
        >>> write_preprocessing("runs/r20", dataset_preprocessing("digits"))  # doctest: +SKIP
        'runs/r20/preprocessing.json'
    """
    from keras_resnet_lab.atomic import atomic_write_json

    path = os.path.join(os.fspath(folder), PREPROCESSING_FILE)
    atomic_write_json(spec, path)
    return path
