"""Images to visualize: the embedded digits at a model's input size, image files, resizing.

The visualization functions *reject* arrays whose size differs from the model's input; these
helpers are where resizing happens, explicitly: :func:`resize_images` for arrays and
:func:`load_image_files`, which resizes files to the model's input size.
"""

import os

import numpy as np

from keras_resnet_lab._checks import one_of, positive_int

__all__ = ["PREPROCESSING", "digits_for_model", "load_image_files", "resize_images"]

#: How :func:`load_image_files` maps pixel values: ``"digits"`` standardizes [0, 1] pixels with
#: the embedded digits' training mean and std (what the digits models were trained on);
#: ``"unit"`` keeps [0, 1]; ``"raw"`` keeps [0, 255].
PREPROCESSING = ("digits", "unit", "raw")


def _image_input(model):
    from keras_resnet_lab.vis._tkv import single_input

    shape = tuple(single_input(model).shape[1:])
    if len(shape) != 3 or None in shape:
        raise ValueError(f"model '{model.name}' takes inputs of shape {shape}, not fixed-size "
                         "images (height, width, channels).")
    return shape


def digits_for_model(model, count=8, split="test"):
    """Embedded digits at ``model``'s input size: ``(images, labels, value_range)``.

    Images cycle through the classes (the first example of digit 0, of 1, ...), standardized as
    :func:`keras_resnet_lab.data.load_digits` does, so a model trained on the digits sees its
    own kind of input.

    Args:
        model: a model whose input is square (S, S, 1 or 3) images, S >= 8.
        count: number of images.
        split: ``"test"`` or ``"train"``.

    Returns:
        float32 images ``(count, S, S, C)``, int labels ``(count,)`` and the ``(low, high)``
        pixel range of the standardized dataset.

    Raises:
        ValueError: if the input is not square 1- or 3-channel images of side >= 8.

    Example:
        >>> images, labels, value_range = digits_for_model(model, count=4)
    """
    from keras_resnet_lab.data import load_digits

    count = positive_int("count", count)
    one_of("split", split, ("test", "train"))
    height, width, channels = _image_input(model)
    if height != width or channels not in (1, 3) or height < 8:
        raise ValueError(f"the embedded digits need square inputs of side >= 8 with 1 or 3 "
                         f"channels; model '{model.name}' takes {(height, width, channels)}: "
                         "give your own images (--images FILE ...).")
    train, test = load_digits(image_size=height, channels=channels)
    x, y = test if split == "test" else train
    order = []
    by_class = {c: list(np.flatnonzero(y == c)) for c in np.unique(y)}
    while len(order) < min(count, len(y)):
        for c in sorted(by_class):
            if by_class[c] and len(order) < count:
                order.append(by_class[c].pop(0))
    value_range = (float(train[0].min()), float(train[0].max()))
    return x[order].astype(np.float32), y[order].astype(int), value_range


def resize_images(images, height, width):
    """Bilinearly resize a batch ``(N, H, W, C)`` (or one image) to ``(height, width)``.

    Example:
        >>> resize_images(np.zeros((2, 32, 32, 3)), 16, 16).shape
        (2, 16, 16, 3)
    """
    import tensorflow as tf

    height, width = positive_int("height", height), positive_int("width", width)
    x = np.asarray(images, dtype=np.float32)
    if x.ndim not in (3, 4):
        raise ValueError(f"`images` must be (H, W, C) or (N, H, W, C), got shape {x.shape}.")
    single = x.ndim == 3
    out = tf.image.resize(x[None] if single else x, (height, width), method="bilinear")
    out = np.asarray(out, dtype=np.float32)
    return out[0] if single else out


def _digits_statistics(size, channels):
    from keras_resnet_lab.data import load_digits

    (x_train, _), _ = load_digits(image_size=size, channels=channels, normalize=False)
    return (x_train.mean(axis=(0, 1, 2), dtype=np.float64),
            x_train.std(axis=(0, 1, 2), dtype=np.float64))


def load_image_files(paths, model, preprocess="digits"):
    """Read image files as a batch for ``model``, *resized* to its input size.

    Files are converted to the model's channels (grey or RGB; alpha is dropped), resized with
    bilinear interpolation to the model's (height, width), and scaled as ``preprocess`` says.

    Args:
        paths: image file paths (PNG, JPEG, ... anything Pillow reads).
        model: the model whose input size and channels the images get.
        preprocess: ``"digits"`` (pixels in [0, 1], standardized with the embedded digits'
            training statistics: white strokes on black, like the digits), ``"unit"`` ([0, 1])
            or ``"raw"`` ([0, 255]).

    Returns:
        ``(images, value_range)``: float32 ``(N, H, W, C)`` and the ``(low, high)`` range that
        black and white pixels map to.

    Raises:
        FileNotFoundError: a file does not exist.
        ValueError: a file is not an image, or the model's input is not an image.

    Example:
        >>> images, value_range = load_image_files(["seven.png"], model, preprocess="unit")
    """
    from PIL import Image, UnidentifiedImageError

    one_of("preprocess", preprocess, PREPROCESSING)
    height, width, channels = _image_input(model)
    if channels not in (1, 3):
        raise ValueError(f"image files can feed 1- or 3-channel models; model '{model.name}' "
                         f"takes {channels} channels.")
    paths = [os.fspath(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    if not paths:
        raise ValueError("`paths` is empty: give at least one image file.")
    batch = []
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"image file not found: {path}")
        try:
            with Image.open(path) as image:
                image = image.convert("L" if channels == 1 else "RGB")
                image = image.resize((width, height), Image.BILINEAR)
                array = np.asarray(image, dtype=np.float32)
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"could not read image file {path}: {error}") from None
        batch.append(array.reshape(height, width, channels))
    x = np.stack(batch)
    if preprocess == "raw":
        return x, (0.0, 255.0)
    x = x / 255.0
    if preprocess == "unit":
        return x, (0.0, 1.0)
    if height != width or height < 8:
        raise ValueError(f"preprocess='digits' needs square inputs of side >= 8; model "
                         f"'{model.name}' takes {(height, width)}: use 'unit' or 'raw'.")
    mean, std = _digits_statistics(height, channels)
    x = ((x - mean) / std).astype(np.float32)
    low = float(np.min((0.0 - mean) / std))
    high = float(np.max((1.0 - mean) / std))
    return x, (low, high)
