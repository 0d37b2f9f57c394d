"""What the sub-commands share: user errors, model files, output folders."""

import os
import zipfile


class CliError(Exception):
    """An error the user can fix; printed as one line by the CLI."""


#: Exceptions shown to the user as one ``error:`` line (exit code 2) instead of a traceback.
USER_ERRORS = (CliError, ValueError, FileNotFoundError, FileExistsError, PermissionError)


def add_run_arguments(parser):
    """``--seed``, ``--force`` and ``--quiet``, as every file-writing analysis command has them."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true",
                        help="write into an --out that already holds files")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def load_model_file(path):
    """Load a ``.keras`` model safely (``safe_mode=True``), with one clear error if it can't be.

    Importing this package registers its layers, so files with our blocks load.
    """
    import keras

    import keras_resnet_lab  # noqa: F401  (registers the layers)

    path = os.fspath(path)
    if not os.path.exists(path):
        raise CliError(f"model file not found: {path}")
    if not path.endswith(".keras"):
        raise CliError(f"expected a Keras v3 model file ending in '.keras', got: {path}")
    if not zipfile.is_zipfile(path):
        raise CliError(f"not a Keras model file (not a zip archive, truncated or corrupt): "
                       f"{path}")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # noqa: BLE001  (any loading failure is the file's fault)
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CliError(f"could not load model file {path}: {first}") from error


def prepare_out_dir(path, force=False, resume=False, marker="results"):
    """Create the output folder ``path``; refuse one that already holds results.

    Args:
        path: the folder.
        force: allow writing into a folder that already has results (files are replaced one
            by one, atomically, as they are rewritten).
        resume: allow continuing an interrupted run in that folder.
        marker: what the folder holds, for the error message.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise CliError(f"--out {path} exists and is not a folder")
    if os.path.isdir(path) and os.listdir(path) and not (force or resume):
        raise CliError(f"--out {path} already holds {marker}; pass --force to overwrite them "
                       "or --resume to continue")
    os.makedirs(path, exist_ok=True)
    return path
