"""Errors raised by the data package."""

from __future__ import annotations

import os


class DatasetNotFoundError(FileNotFoundError):
    """A requested dataset is not prepared in the data directory.

    Raised promptly (no download, no network retries) by
    :func:`keras_resnet_lab.data.load_dataset`; the message names the dataset, the data
    directory searched and how to provide the data.

    Args:
        name: Dataset name, e.g. ``"cifar10"``.
        data_dir: The data directory that was searched.
        message: The full explanation shown to the user.

    Example:
        >>> try:
        ...     load_dataset("cifar10", data_dir="/empty")
        ... except DatasetNotFoundError as err:
        ...     print(err.name, err.data_dir)
    """

    def __init__(self, name: str, data_dir: str | os.PathLike | None, message: str):
        super().__init__(message)
        self.name = name
        self.data_dir = None if data_dir is None else os.fspath(data_dir)
