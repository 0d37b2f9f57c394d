"""The embedded default dataset: scikit-learn's bundled 8x8 handwritten digits, CIFAR-shaped.

scikit-learn ships the 1797 images of the UCI "Optical Recognition of Handwritten Digits" test
set (8x8 pixels, values 0..16) inside its wheel, so this dataset is real and needs no download.
:func:`load_digits` upsamples every digit to about 3/4 of ``image_size``, centres it on a zero
border (32x32x3 by default, like CIFAR) and returns a fixed stratified train/test split.
"""

from __future__ import annotations

import functools

import numpy as np

from keras_resnet_lab._checks import boolean, int_at_least, is_int

DIGITS_NUM_CLASSES = 10
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0
DIGITS_SOURCE_SIZE = 8
_DIGITS_MAX_VALUE = 16.0
#: ``color`` of the preprocessing: the digits are grey (replicated to RGB for 3 channels).
DIGITS_COLOR = "grayscale"


def _validate(image_size, channels) -> None:
    int_at_least("image_size", image_size, DIGITS_SOURCE_SIZE)
    if not (is_int(channels) and channels in (1, 3)):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}.")


def digit_layout(image_size: int = 32) -> tuple[int, int]:
    """Return ``(digit_size, border)``: where the digit sits inside an ``image_size`` image.

    The digit is upsampled to ``round(3/4 * image_size)`` pixels and placed with ``border``
    background pixels above and to the left of it (one more below/right when the margin is odd).

    Args:
        image_size: Side of the square output image, an int >= 8.

    Returns:
        ``(digit_size, border)`` in pixels.

    Example:
        >>> digit_layout(32)
        (24, 4)
    """
    _validate(image_size, 3)
    digit_size = int(np.floor(0.75 * image_size + 0.5))
    return digit_size, (image_size - digit_size) // 2


def _bilinear_matrix(out_size: int, in_size: int) -> np.ndarray:
    """Interpolation matrix ``(out_size, in_size)`` for half-pixel-centred bilinear resizing."""
    centers = (np.arange(out_size, dtype=np.float64) + 0.5) * in_size / out_size - 0.5
    centers = np.clip(centers, 0.0, in_size - 1)
    low = np.floor(centers).astype(int)
    high = np.minimum(low + 1, in_size - 1)
    frac = centers - low
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    rows = np.arange(out_size)
    np.add.at(matrix, (rows, low), 1.0 - frac)
    np.add.at(matrix, (rows, high), frac)
    return matrix


def _render(images: np.ndarray, image_size: int, channels: int) -> np.ndarray:
    """Upsample ``(n, 8, 8)`` images in [0, 1] and centre them on a zero border, NHWC float32."""
    digit_size, border = digit_layout(image_size)
    resize = _bilinear_matrix(digit_size, DIGITS_SOURCE_SIZE)
    digits = np.einsum("ij,njk,lk->nil", resize, images, resize)
    out = np.zeros((images.shape[0], image_size, image_size), dtype=np.float64)
    out[:, border : border + digit_size, border : border + digit_size] = digits
    out = np.repeat(out[..., None], channels, axis=-1)
    return out.astype(np.float32)


@functools.lru_cache(maxsize=8)
def _load_digits_cached(image_size: int, channels: int, normalize: bool):
    """Build the split once per argument tuple; the arrays are marked read-only."""
    from sklearn.datasets import load_digits as sklearn_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_load_digits()
    images = bunch.images.astype(np.float64) / _DIGITS_MAX_VALUE
    labels = bunch.target.astype(np.int32)
    train_idx, test_idx = train_test_split(
        np.arange(labels.shape[0]),
        test_size=DIGITS_TEST_FRACTION,
        random_state=DIGITS_SPLIT_SEED,
        stratify=labels,
    )
    x_train = _render(images[train_idx], image_size, channels)
    x_test = _render(images[test_idx], image_size, channels)
    if normalize:
        mean = x_train.mean(axis=(0, 1, 2), dtype=np.float64)
        std = x_train.std(axis=(0, 1, 2), dtype=np.float64)
        x_train = ((x_train - mean) / std).astype(np.float32)
        x_test = ((x_test - mean) / std).astype(np.float32)
    arrays = (x_train, labels[train_idx], x_test, labels[test_idx])
    for array in arrays:
        array.flags.writeable = False
    return arrays


def load_digits(image_size: int = 32, channels: int = 3, normalize: bool = True):
    """Load the embedded digits dataset as CIFAR-like NHWC images with a fixed train/test split.

    Each 8x8 digit (values 0..16, scaled to [0, 1]) is bilinearly upsampled to about 3/4 of
    ``image_size`` (8 -> 24 for 32) and centred on a zero border (4 pixels for 32), then
    replicated to ``channels``. The split is stratified, 20% test, with a fixed seed: 1437 train
    and 360 test images, identical on every call. Results are cached in-process; each call returns
    fresh copies, so callers may modify them freely.

    Args:
        image_size: Side of the square output images, an int >= 8.
        channels: 1 (grayscale) or 3 (the grey value replicated to RGB).
        normalize: If True, standardize with the train set's per-channel mean and std (the same
            constants are applied to the test set); if False, pixels stay in [0, 1].

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: float32 images ``(n, image_size, image_size,
        channels)`` and int32 labels in ``0..9``.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_digits()
        >>> x_train.shape, x_test.shape
        ((1437, 32, 32, 3), (360, 32, 32, 3))
    """
    _validate(image_size, channels)
    boolean("normalize", normalize)
    x_train, y_train, x_test, y_test = _load_digits_cached(
        int(image_size), int(channels), bool(normalize)
    )
    return (x_train.copy(), y_train.copy()), (x_test.copy(), y_test.copy())


def digits_preprocessing(image_size: int = 32, channels: int = 3) -> dict:
    """How an image file becomes the input of a model trained on :func:`load_digits`.

    The export manifest's preprocessing (see :func:`keras_resnet_lab.export.preprocessing_spec`):
    a consumer converts an image to grey (replicated to ``channels``), resizes it to
    ``image_size``, and computes ``x = (pixels * scale - mean) / std`` from its 0-255 pixels,
    with ``mean`` and ``std`` the per-channel statistics of the training split in [0, 1] scale
    (what ``load_digits(normalize=True)`` standardizes with). An image looks like the digits
    when it has white strokes on black, the digit filling about 3/4 of the image, centred
    (see :func:`digit_layout`).

    Args:
        image_size: Side of the square images the model takes, an int >= 8.
        channels: 1 or 3.

    Returns:
        ``{"description", "scale", "mean", "std", "color"}``.

    Example:
        >>> spec = digits_preprocessing(16)
        >>> spec["scale"], spec["color"], len(spec["mean"])
        (0.00392156862745098, 'grayscale', 3)
    """
    _validate(image_size, channels)
    x_train = _load_digits_cached(int(image_size), int(channels), False)[0]
    mean = x_train.mean(axis=(0, 1, 2), dtype=np.float64)
    std = x_train.std(axis=(0, 1, 2), dtype=np.float64)
    digit_size, border = digit_layout(int(image_size))
    return {
        "description": (
            f"embedded digits at {image_size}x{image_size}: grey, white strokes on black, the "
            f"digit {digit_size}x{digit_size} pixels centred ({border}-pixel border); pixels / "
            "255, standardized with the training split's per-channel mean and std"),
        "scale": 1.0 / 255.0,
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "color": DIGITS_COLOR,
    }
