"""tf.data augmentation and normalization for single images (HWC tensors).

Every augmentation takes and returns ``(image, label)`` so it plugs straight into
``tf.data.Dataset.map``. Pass ``seed`` (a shape-``[2]`` integer tensor, e.g. one element of
``tf.data.Dataset.random(seed).batch(2)``) for reproducible stateless randomness; without it the
stateful TensorFlow random ops are used.
"""

from __future__ import annotations

import tensorflow as tf

from keras_resnet_lab._checks import boolean, int_at_least

# Per-channel statistics of the training sets, in [0, 1] pixel scale.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PAD_MODES = ("constant", "reflect", "symmetric")


def _check_range(name: str, value, low_exclusive: float, high: float | None) -> tuple:
    allowed = f"a pair (low, high) with {low_exclusive} < low <= high" + (
        f" <= {high}" if high is not None else ""
    )
    try:
        low_v, high_v = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {allowed}, got {value!r}.") from None
    if not low_exclusive < low_v <= high_v or (high is not None and high_v > high):
        raise ValueError(f"{name} must be {allowed}, got {value!r}.")
    return low_v, high_v


def _split_seed(seed):
    """Two independent stateless seeds from one, or ``(None, None)``."""
    if seed is None:
        return None, None
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=2)
    return seeds[0], seeds[1]


def _random_flip(image, seed):
    if seed is None:
        return tf.image.random_flip_left_right(image)
    return tf.image.stateless_random_flip_left_right(image, seed=seed)


def pad_crop_flip(image, label, pad: int = 4, flip: bool = True, mode: str = "constant",
                  seed=None):
    """Pad, randomly crop back to the original size and randomly flip (He et al. CIFAR recipe).

    He et al. 2015 (arXiv 1512.03385, section 4.2): "4 pixels are padded on each side, and a
    32x32 crop is randomly sampled from the padded image or its horizontal flip".

    Args:
        image: ``(height, width, channels)`` tensor.
        label: Passed through unchanged.
        pad: Pixels added on each side before cropping, an int >= 0 (< height and width for
            ``"reflect"``).
        flip: If True, flip left-right with probability 1/2.
        mode: Padding mode, one of ``"constant"`` (zeros), ``"reflect"``, ``"symmetric"``.
        seed: Optional shape-``[2]`` integer tensor for stateless, reproducible randomness.

    Returns:
        ``(image, label)`` with the image's shape and dtype unchanged.

    Example:
        >>> ds = ds.map(lambda x, y: pad_crop_flip(x, y, pad=4))
    """
    int_at_least("pad", pad, 0)
    boolean("flip", flip)
    if mode not in PAD_MODES:
        raise ValueError(f"mode must be one of {PAD_MODES}, got {mode!r}.")
    image = tf.convert_to_tensor(image)
    crop_seed, flip_seed = _split_seed(seed)
    if pad:
        shape = tf.shape(image)
        padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode=mode.upper())
        if crop_seed is None:
            cropped = tf.image.random_crop(padded, shape)
        else:
            cropped = tf.image.stateless_random_crop(padded, shape, seed=crop_seed)
        image = tf.ensure_shape(cropped, image.shape)
    if flip:
        image = _random_flip(image, flip_seed)
    return image, label


def random_resized_crop_flip(image, label, size: int = 224, scale=(0.08, 1.0),
                             ratio=(3 / 4, 4 / 3), flip: bool = True, seed=None):
    """Crop a random area and aspect ratio, resize to ``size`` x ``size``, randomly flip.

    The ImageNet training augmentation of the standard ResNet recipes (the "Inception-style" crop of
    Szegedy et al., arXiv 1409.4842, as in Goyal et al., arXiv 1706.02677): the crop covers a
    fraction of the image area drawn from ``scale`` with an aspect ratio drawn from ``ratio``; if
    no valid crop is found in 10 attempts, the whole image is used.

    Args:
        image: ``(height, width, channels)`` tensor of any size.
        label: Passed through unchanged.
        size: Output side in pixels, an int >= 1.
        scale: ``(low, high)`` fraction of the image area, ``0 < low <= high <= 1``.
        ratio: ``(low, high)`` width/height aspect ratio, ``0 < low <= high``.
        flip: If True, flip left-right with probability 1/2.
        seed: Optional shape-``[2]`` integer tensor for stateless, reproducible randomness.

    Returns:
        ``(image, label)``: a float32 ``(size, size, channels)`` image on the input's value scale.

    Example:
        >>> ds = ds.map(lambda x, y: random_resized_crop_flip(x, y, size=224))
    """
    int_at_least("size", size, 1)
    scale = _check_range("scale", scale, 0.0, 1.0)
    ratio = _check_range("ratio", ratio, 0.0, None)
    boolean("flip", flip)
    image = tf.convert_to_tensor(image)
    crop_seed, flip_seed = _split_seed(seed)
    box_args = {
        "image_size": tf.shape(image),
        "bounding_boxes": tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, shape=[1, 1, 4]),
        "min_object_covered": 0.0,
        "aspect_ratio_range": ratio,
        "area_range": scale,
        "max_attempts": 10,
        "use_image_if_no_bounding_boxes": True,
    }
    if crop_seed is None:
        begin, crop_size, _ = tf.image.sample_distorted_bounding_box(**box_args)
    else:
        begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
            seed=crop_seed, **box_args
        )
    image = tf.slice(image, begin, crop_size)
    image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    image = tf.ensure_shape(image, (size, size, None))
    if flip:
        image = _random_flip(image, flip_seed)
    return image, label


def center_crop_resize(image, label, size: int = 224, resize: int = 256):
    """Resize the shorter side to ``resize`` (keeping the aspect ratio), then centre-crop ``size``.

    The standard ImageNet evaluation transform (256 -> 224 single centre crop).

    Args:
        image: ``(height, width, channels)`` tensor of any size.
        label: Passed through unchanged.
        size: Side of the square centre crop, an int >= 1.
        resize: Length of the shorter side after resizing, an int >= ``size``.

    Returns:
        ``(image, label)``: a float32 ``(size, size, channels)`` image on the input's value scale.

    Example:
        >>> ds = ds.map(lambda x, y: center_crop_resize(x, y, size=224, resize=256))
    """
    int_at_least("size", size, 1)
    int_at_least("resize", resize, size)
    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    height = tf.cast(shape[0], tf.float32)
    width = tf.cast(shape[1], tf.float32)
    factor = tf.cast(resize, tf.float32) / tf.minimum(height, width)
    new_height = tf.maximum(tf.cast(tf.round(height * factor), tf.int32), resize)
    new_width = tf.maximum(tf.cast(tf.round(width * factor), tf.int32), resize)
    image = tf.image.resize(image, tf.stack([new_height, new_width]), method="bilinear",
                            antialias=True)
    top = (new_height - size) // 2
    left = (new_width - size) // 2
    image = image[top : top + size, left : left + size, :]
    return tf.ensure_shape(image, (size, size, None)), label


def normalize(image, mean, std):
    """Standardize an image per channel: ``(image - mean) / std`` in float32.

    Args:
        image: ``(..., channels)`` tensor on the same value scale as ``mean`` and ``std``
            (the constants of this module are in [0, 1] pixel scale).
        mean: One value per channel.
        std: One positive value per channel, same length as ``mean``.

    Returns:
        A float32 tensor with the image's shape.

    Example:
        >>> x = normalize(tf.image.convert_image_dtype(png, tf.float32),
        ...               CIFAR10_MEAN, CIFAR10_STD)
    """
    try:
        mean_t = tuple(float(m) for m in mean)
        std_t = tuple(float(s) for s in std)
    except (TypeError, ValueError):
        raise ValueError(
            f"mean and std must be sequences of numbers, got mean={mean!r}, std={std!r}."
        ) from None
    if len(mean_t) != len(std_t) or not mean_t:
        raise ValueError(
            f"mean and std must be non-empty and of the same length (one value per channel), "
            f"got mean={mean!r}, std={std!r}."
        )
    if any(s <= 0 for s in std_t):
        raise ValueError(f"std must be positive in every channel, got {std!r}.")
    image = tf.cast(image, tf.float32)
    return (image - tf.constant(mean_t, tf.float32)) / tf.constant(std_t, tf.float32)
