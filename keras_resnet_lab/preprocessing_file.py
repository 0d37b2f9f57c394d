"""The ``preprocessing.json`` that ``train`` writes beside ``model.keras``: where it lives and
how it is read. Free of TensorFlow, so that ``keras-resnet-lab export`` checks it before
TensorFlow loads (:mod:`keras_resnet_lab.data.preprocessing` builds the preprocessing itself).
"""

import json
import os

#: The file ``train`` writes beside ``model.keras``; ``export`` reads it when no
#: ``--preprocessing`` is given.
PREPROCESSING_FILE = "preprocessing.json"


def preprocessing_path(model_file):
    """Where the preprocessing of ``model_file`` is recorded: ``preprocessing.json`` in its
    folder.

    Example:
        >>> preprocessing_path("runs/r20/model.keras").endswith("r20/preprocessing.json")
        True
    """
    return os.path.join(os.path.dirname(os.path.abspath(os.fspath(model_file))),
                        PREPROCESSING_FILE)


def read_preprocessing(model_file):
    """The preprocessing recorded beside ``model_file`` (:func:`preprocessing_path`), or None
    when there is none.

    Raises:
        ValueError: the file exists but is not a JSON object.

    Example:
        >>> read_preprocessing("runs/r20/model.keras")["color"]  # doctest: +SKIP
        'grayscale'
    """
    path = preprocessing_path(model_file)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable JSON file: {error}") from error
    if not isinstance(value, dict):
        raise ValueError(f"{path} must hold a JSON object, got {value!r}.")
    return value
