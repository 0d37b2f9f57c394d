"""One entry point for every dataset: batched, normalized ``tf.data`` pipelines.

``load_dataset("digits")`` works offline out of the box (the embedded dataset of
:mod:`keras_resnet_lab.data.digits`). ``"cifar10"``, ``"cifar100"`` and ``"imagenet2012"`` are
read with tensorflow-datasets from prepared data only: nothing is ever downloaded while loading,
and data that is not there raises :class:`DatasetNotFoundError` at once, saying how to provide it.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from keras_resnet_lab import catalog
from keras_resnet_lab._checks import boolean, int_at_least
from keras_resnet_lab.data import augment as aug
from keras_resnet_lab.data.digits import DIGITS_NUM_CLASSES, digit_layout, load_digits
from keras_resnet_lab.data.errors import DatasetNotFoundError

#: The embedded digits and the tensorflow-datasets datasets (the command line's catalog).
DATASETS = catalog.DATASETS

# ImageNet evaluation resizes the shorter side to 256 before a 224 centre crop.
IMAGENET_CROP_FRACTION = 224 / 256
IMAGENET_MANUAL_FILES = {
    "train": "ILSVRC2012_img_train.tar",
    "validation": "ILSVRC2012_img_val.tar",
}

# Shuffle buffers (elements). tfds datasets are shuffled while still encoded (a few kB per
# CIFAR image, ~110 kB per ImageNet image) and their files are shuffled too.
_SHUFFLE_BUFFER = {"cifar10": 10_000, "cifar100": 10_000, "imagenet2012": 4_096}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset.

    Args:
        name: One of :data:`DATASETS`.
        num_classes: Number of label classes.
        input_shape: ``(height, width, channels)`` of the images :func:`load_dataset` yields.
        train_split: Name of the training split.
        test_split: Name of the evaluation split.
        splits: All split names :func:`load_dataset` accepts for this dataset.
        mean: Per-channel mean used for normalization ([0, 1] pixel scale), None for digits
            (standardized with its own train statistics).
        std: Per-channel std matching ``mean``.

    Example:
        >>> dataset_info("cifar10").input_shape
        (32, 32, 3)
    """

    name: str
    num_classes: int
    input_shape: tuple
    train_split: str
    test_split: str
    splits: tuple
    mean: tuple | None = None
    std: tuple | None = None

    def as_dict(self) -> dict:
        """Return the fields as a plain dict (JSON-friendly)."""
        return dataclasses.asdict(self)


_SPECS = {
    "digits": {"num_classes": DIGITS_NUM_CLASSES, "image_size": 32, "train_split": "train",
               "test_split": "test", "mean": None, "std": None},
    "cifar10": {"num_classes": 10, "image_size": 32, "train_split": "train",
                "test_split": "test", "mean": aug.CIFAR10_MEAN, "std": aug.CIFAR10_STD},
    "cifar100": {"num_classes": 100, "image_size": 32, "train_split": "train",
                 "test_split": "test", "mean": aug.CIFAR100_MEAN, "std": aug.CIFAR100_STD},
    "imagenet2012": {"num_classes": 1000, "image_size": 224, "train_split": "train",
                     "test_split": "validation", "mean": aug.IMAGENET_MEAN,
                     "std": aug.IMAGENET_STD},
}
# Extra split names accepted as aliases.
_SPLIT_ALIASES = {"imagenet2012": {"test": "validation"}}


def _check_name(name) -> str:
    if name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}.")
    return name


def _check_image_size(image_size) -> None:
    int_at_least("image_size", image_size, 8, allow_none=True)


def dataset_info(name: str, image_size: int | None = None) -> DatasetInfo:
    """Describe a dataset: classes, the input shape :func:`load_dataset` yields, split names.

    Args:
        name: One of :data:`DATASETS`.
        image_size: The ``image_size`` that will be passed to :func:`load_dataset`; None for the
            dataset's default (32 for digits and CIFAR, 224 for ImageNet).

    Returns:
        A :class:`DatasetInfo`.

    Example:
        >>> info = dataset_info("imagenet2012")
        >>> info.num_classes, info.input_shape, info.test_split
        (1000, (224, 224, 3), 'validation')
    """
    spec = _SPECS[_check_name(name)]
    _check_image_size(image_size)
    size = spec["image_size"] if image_size is None else int(image_size)
    splits = (spec["train_split"], spec["test_split"]) + tuple(_SPLIT_ALIASES.get(name, {}))
    return DatasetInfo(
        name=name,
        num_classes=spec["num_classes"],
        input_shape=(size, size, 3),
        train_split=spec["train_split"],
        test_split=spec["test_split"],
        splits=splits,
        mean=spec["mean"],
        std=spec["std"],
    )


def _resolve_split(name: str, split) -> tuple[str, str]:
    """Return ``(base_split, tfds_split)``; tfds also accepts slices like ``train[:10%]``."""
    info = dataset_info(name)
    base, bracket, rest = (split if isinstance(split, str) else repr(split)).partition("[")
    if base not in info.splits or (bracket and name == "digits"):
        allowed = info.splits if name == "digits" else (
            f"{info.splits} (optionally sliced, e.g. 'train[:10%]')")
        raise ValueError(f"split for {name!r} must be one of {allowed}, got {split!r}.")
    base = _SPLIT_ALIASES.get(name, {}).get(base, base)
    return base, base + bracket + rest


def _import_tfds():
    """Import tensorflow_datasets lazily (slow to import), with an actionable error."""
    try:
        import tensorflow_datasets as tfds
    except ModuleNotFoundError as err:
        raise ImportError(
            f"Reading cifar10/cifar100/imagenet2012 needs tensorflow-datasets and its run-time "
            f"dependency importlib_resources (missing module: {err.name!r}); install them with "
            f"`pip install tensorflow-datasets importlib_resources`."
        ) from err
    return tfds


def _manual_dir(builder, manual_dir) -> str:
    if manual_dir is not None:
        return os.fspath(manual_dir)
    return os.fspath(builder.data_dir_root / "downloads" / "manual")


def _missing_manual_files(manual_dir: str, base_split: str | None) -> list[str]:
    wanted = IMAGENET_MANUAL_FILES if base_split is None else {
        base_split: IMAGENET_MANUAL_FILES[base_split]}
    present = [f for f in wanted.values() if os.path.isfile(os.path.join(manual_dir, f))]
    if base_split is None and present:
        return []  # tfds builds the splits whose archives are present
    return [f for f in wanted.values() if f not in present]


def _not_found(name: str, builder, data_dir, split: str, manual_dir=None,
               reason: str | None = None) -> DatasetNotFoundError:
    root = os.fspath(builder.data_dir_root)
    where = (f"data_dir {root!r}" if data_dir is not None
             else f"the default data_dir {root!r} (pass data_dir=... or set TFDS_DATA_DIR)")
    head = reason or f"Dataset {name!r} (split {split!r}) is not prepared in {where}."
    if name == "imagenet2012":
        manual = _manual_dir(builder, manual_dir)
        how = (
            "ImageNet cannot be downloaded automatically. To provide it: register at "
            "https://image-net.org/download-images, download ILSVRC2012_img_train.tar and "
            f"ILSVRC2012_img_val.tar, and place them in the manual dir {manual!r} (by default "
            "<data_dir>/downloads/manual; or pass manual_dir=...). load_dataset then builds the "
            "dataset from there on first use (hours, ~150 GB), or build it beforehand with "
            f"`tfds build imagenet2012 --data_dir {root} --manual_dir {manual}` or "
            f"keras_resnet_lab.data.prepare_dataset('imagenet2012', data_dir={root!r}, "
            f"manual_dir={manual!r})."
        )
    else:
        how = (
            f"load_dataset never downloads. To provide it, on a machine with internet run "
            f"`tfds build {name} --data_dir {root}` (or `python -c \"import tensorflow_datasets "
            f"as tfds; tfds.builder('{name}', data_dir='{root}').download_and_prepare()\"`), "
            f"then copy the folder {os.path.join(root, name)} to this machine under the same "
            f"data_dir."
        )
    return DatasetNotFoundError(name, root, f"{head} {how}")


def prepare_dataset(name: str, data_dir=None, manual_dir=None) -> str:
    """Build (download and prepare) a tensorflow-datasets dataset into ``data_dir``.

    For ``"cifar10"``/``"cifar100"`` this downloads the archives, so it needs internet. For
    ``"imagenet2012"`` the ILSVRC2012 tar files must already be in the manual dir (``manual_dir``,
    or ``<data_dir>/downloads/manual`` by default); it is passed to tfds as
    ``tfds.download.DownloadConfig(manual_dir=...)``. ``"digits"`` is embedded (ValueError).

    Args:
        name: ``"cifar10"``, ``"cifar100"`` or ``"imagenet2012"``.
        data_dir: tensorflow-datasets data directory; None for the tfds default.
        manual_dir: Folder holding ``ILSVRC2012_img_train.tar``/``ILSVRC2012_img_val.tar``
            (imagenet2012 only).

    Returns:
        The folder the prepared dataset lives in.

    Raises:
        DatasetNotFoundError: imagenet2012 without any of its tar files in the manual dir.

    Example:
        >>> prepare_dataset("imagenet2012", data_dir="/data/tfds", manual_dir="/data/ilsvrc")
    """
    _check_name(name)
    if name == "digits":
        raise ValueError("name must be a tensorflow-datasets dataset ('cifar10', 'cifar100', "
                         "'imagenet2012'), got 'digits' (embedded, nothing to prepare).")
    if manual_dir is not None and name != "imagenet2012":
        raise ValueError(f"manual_dir applies to 'imagenet2012' only, got manual_dir="
                         f"{manual_dir!r} for name={name!r}.")
    tfds = _import_tfds()
    builder = tfds.builder(name, data_dir=data_dir)
    if name == "imagenet2012":
        manual = _manual_dir(builder, manual_dir)
        if _missing_manual_files(manual, None):
            raise _not_found(name, builder, data_dir, "train/validation", manual_dir,
                             reason=f"Dataset 'imagenet2012': no ILSVRC2012 tar file found in "
                                    f"the manual dir {manual!r}.")
    config = tfds.download.DownloadConfig(
        manual_dir=None if manual_dir is None else os.fspath(manual_dir))
    builder.download_and_prepare(download_config=config)
    return os.fspath(builder.data_dir)


def _read_tfds(name, base_split, split, data_dir, manual_dir, shuffle_files, seed):
    """Read encoded ``(image_bytes, label)`` pairs of prepared data, or raise promptly."""
    tfds = _import_tfds()
    kwargs = {
        "split": split,
        "as_supervised": True,
        "shuffle_files": shuffle_files,
        "decoders": {"image": tfds.decode.SkipDecoding()},
        "read_config": tfds.ReadConfig(shuffle_seed=seed),
    }
    prepared_now = False
    while True:
        builder = tfds.builder(name, data_dir=data_dir)
        try:
            return builder.as_dataset(**kwargs)
        except AssertionError as err:  # tfds: "Dataset x: could not find data in ..."
            if "could not find data" not in str(err):
                raise
            reason = None
        except ValueError as err:  # prepared, but without this split (e.g. ImageNet val only)
            if "Unknown split" not in str(err):
                raise
            reason = (f"Dataset {name!r} is prepared in {os.fspath(builder.data_dir_root)!r} "
                      f"but has no split {split!r} ({err}).")
        can_build = (name == "imagenet2012" and reason is None and not prepared_now
                     and not _missing_manual_files(_manual_dir(builder, manual_dir), base_split))
        if not can_build:
            if prepared_now:
                reason = (f"Dataset {name!r}: building from the manual dir "
                          f"{_manual_dir(builder, manual_dir)!r} did not produce split {split!r}.")
            raise _not_found(name, builder, data_dir, split, manual_dir, reason)
        prepare_dataset(name, data_dir=data_dir, manual_dir=manual_dir)
        prepared_now = True


def _decode(encoded):
    """Encoded JPEG/PNG bytes -> float32 ``(h, w, 3)`` in [0, 1]."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    return tf.image.convert_image_dtype(image, tf.float32)


def _digits_preprocess(image_size: int, augment: bool):
    _, border = digit_layout(image_size)

    def preprocess(image, label, seed):
        if augment:
            # Shift by up to the border width; "symmetric" padding only copies background, so
            # the digit stays whole. No flip: digits are not mirror-symmetric.
            image, label = aug.pad_crop_flip(image, label, pad=border, flip=False,
                                             mode="symmetric", seed=seed)
        return image, label

    return preprocess


def _cifar_preprocess(name: str, image_size: int, augment: bool):
    spec = _SPECS[name]
    pad = max(1, round(4 * image_size / 32))

    def preprocess(encoded, label, seed):
        image = tf.ensure_shape(_decode(encoded), (32, 32, 3))
        if image_size != 32:
            image = tf.image.resize(image, (image_size, image_size), antialias=True)
        if augment:
            image, label = aug.pad_crop_flip(image, label, pad=pad, flip=True, seed=seed)
        image = aug.normalize(image, spec["mean"], spec["std"])
        return tf.ensure_shape(image, (image_size, image_size, 3)), tf.cast(label, tf.int32)

    return preprocess


def _imagenet_preprocess(image_size: int, augment: bool):
    resize = max(image_size, round(image_size / IMAGENET_CROP_FRACTION))

    def preprocess(encoded, label, seed):
        image = _decode(encoded)
        if augment:
            image, label = aug.random_resized_crop_flip(image, label, size=image_size, seed=seed)
        else:
            image, label = aug.center_crop_resize(image, label, size=image_size, resize=resize)
        image = aug.normalize(image, aug.IMAGENET_MEAN, aug.IMAGENET_STD)
        return tf.ensure_shape(image, (image_size, image_size, 3)), tf.cast(label, tf.int32)

    return preprocess


def load_dataset(name: str, split: str = "train", batch_size: int = 128, data_dir=None,
                 augment: bool | None = None, shuffle: bool | None = None,
                 image_size: int | None = None, drop_remainder: bool = False, seed: int = 0,
                 manual_dir=None) -> tf.data.Dataset:
    """Load a dataset as a batched, prefetched ``tf.data.Dataset`` of normalized images.

    Yields ``(images, labels)``: float32 NHWC images, standardized per channel (digits with its
    train statistics, CIFAR and ImageNet with their usual mean/std), and int32 labels.

    Augmentation (train split by default): digits, random shifts of up to the border width (no
    flip: digits are not mirror-symmetric); CIFAR, pad 4 + random 32x32 crop + horizontal flip
    (He et al., arXiv 1512.03385); ImageNet, random-resized crop + flip. Without augmentation,
    ImageNet images are resized to 256 (shorter side) and centre-cropped to 224 (both scaled
    by ``image_size / 224`` when ``image_size`` is given).

    tfds datasets must be prepared in ``data_dir`` beforehand (see :func:`prepare_dataset`); a
    missing dataset raises :class:`DatasetNotFoundError` immediately, never a download. The one
    exception: imagenet2012 whose ILSVRC2012 tar file for ``split`` is in the manual dir is built
    from it on first use.

    Args:
        name: One of :data:`DATASETS`: ``"digits"``, ``"cifar10"``, ``"cifar100"``,
            ``"imagenet2012"``.
        split: ``"train"`` or ``"test"`` (ImageNet: ``"train"`` or ``"validation"``, with
            ``"test"`` as an alias of ``"validation"``). tfds datasets also accept slices such as
            ``"train[:10%]"``.
        batch_size: Examples per batch, an int >= 1.
        data_dir: tensorflow-datasets data directory; None for the tfds default. Ignored for
            digits.
        augment: None to augment the train split only; True/False to force.
        shuffle: None to shuffle the train split only; True/False to force.
        image_size: Output side in pixels (int >= 8); None for the dataset's default (32 for
            digits and CIFAR, 224 for ImageNet).
        drop_remainder: Drop the last, smaller batch.
        seed: Seed (int >= 0) of the shuffle and the augmentation: same seed, same batches.
        manual_dir: imagenet2012 only: folder with the ILSVRC2012 tar files (default
            ``<data_dir>/downloads/manual``), passed to
            ``tfds.download.DownloadConfig(manual_dir=...)`` when the dataset is built.

    Returns:
        A ``tf.data.Dataset`` of ``(float32 [batch, size, size, 3], int32 [batch])``.

    Raises:
        ValueError: An unknown name or split, or an invalid argument.
        DatasetNotFoundError: The tfds dataset is not prepared in ``data_dir``.

    Example:
        >>> ds = load_dataset("digits", split="train", batch_size=64)
        >>> images, labels = next(iter(ds))
        >>> images.shape, labels.dtype
        (TensorShape([64, 32, 32, 3]), tf.int32)
    """
    _check_name(name)
    base_split, tfds_split = _resolve_split(name, split)
    int_at_least("batch_size", batch_size, 1)
    boolean("augment", augment, allow_none=True)
    boolean("shuffle", shuffle, allow_none=True)
    _check_image_size(image_size)
    boolean("drop_remainder", drop_remainder)
    int_at_least("seed", seed, 0)
    if manual_dir is not None and name != "imagenet2012":
        raise ValueError(f"manual_dir applies to 'imagenet2012' only, got manual_dir="
                         f"{manual_dir!r} for name={name!r}.")

    is_train = base_split == "train"
    augment = is_train if augment is None else augment
    shuffle = is_train if shuffle is None else shuffle
    size = dataset_info(name, image_size).input_shape[0]
    seed = int(seed)

    if name == "digits":
        (x_train, y_train), (x_test, y_test) = load_digits(image_size=size, channels=3)
        images, labels = (x_train, y_train) if is_train else (x_test, y_test)
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        buffer = len(labels)
        preprocess = _digits_preprocess(size, augment)
    else:
        ds = _read_tfds(name, base_split, tfds_split, data_dir, manual_dir, shuffle, seed)
        buffer = _SHUFFLE_BUFFER[name]
        if name == "imagenet2012":
            preprocess = _imagenet_preprocess(size, augment)
        else:
            preprocess = _cifar_preprocess(name, size, augment)

    if shuffle:
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if augment:
        # One stateless seed per example: reproducible for a given `seed`, new every epoch.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda example, example_seed: preprocess(example[0], example[1], example_seed),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        ds = ds.map(lambda image, label: preprocess(image, label, None),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
