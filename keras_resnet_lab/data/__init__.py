"""Datasets for residual-network experiments: the embedded digits, tfds pipelines, augmentation.

Example:
    >>> from keras_resnet_lab.data import load_dataset, dataset_info
    >>> train = load_dataset("digits", split="train", batch_size=64)
    >>> dataset_info("digits").input_shape
    (32, 32, 3)
"""

from keras_resnet_lab.data.augment import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    center_crop_resize,
    normalize,
    pad_crop_flip,
    random_resized_crop_flip,
)
from keras_resnet_lab.data.digits import (
    DIGITS_NUM_CLASSES,
    digit_layout,
    digits_preprocessing,
    load_digits,
)
from keras_resnet_lab.data.errors import DatasetNotFoundError
from keras_resnet_lab.data.pipelines import (
    DATASETS,
    DatasetInfo,
    dataset_info,
    load_dataset,
    prepare_dataset,
)
from keras_resnet_lab.data.preprocessing import (
    PREPROCESSING_FILE,
    dataset_preprocessing,
    read_preprocessing,
    write_preprocessing,
)

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "DATASETS",
    "DIGITS_NUM_CLASSES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PREPROCESSING_FILE",
    "DatasetInfo",
    "DatasetNotFoundError",
    "center_crop_resize",
    "dataset_info",
    "dataset_preprocessing",
    "digit_layout",
    "digits_preprocessing",
    "load_dataset",
    "load_digits",
    "normalize",
    "pad_crop_flip",
    "prepare_dataset",
    "random_resized_crop_flip",
    "read_preprocessing",
    "write_preprocessing",
]
