"""Loading a saved ``.keras`` model safely, with one clear error if it cannot be."""

import os
import zipfile


def load_model_file(path, compile=False):
    """Load a Keras v3 ``.keras`` model with ``safe_mode=True`` (no code from the file runs).

    This package's layers are registered on import, so files with our blocks load.

    Args:
        path: the ``.keras`` file.
        compile: also restore the training configuration (loss, optimizer).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not a ``.keras`` file, truncated or corrupt, or not loadable (the message
            gives the loader's first line).

    Example:
        >>> model = load_model_file("runs/a/model.keras")  # doctest: +SKIP
    """
    import keras

    import keras_resnet_lab.layers  # noqa: F401  (registers the layers)

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file not found: {path}")
    if not path.endswith(".keras"):
        raise ValueError(f"expected a Keras v3 model file ending in '.keras', got: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"not a Keras model file (not a zip archive, truncated or corrupt): "
                         f"{path}")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=compile)
    except Exception as error:  # noqa: BLE001  (any loading failure is the file's fault)
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"could not load model file {path}: {first}") from error
