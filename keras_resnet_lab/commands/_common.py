"""What the sub-commands share: user errors, model files, output folders."""

import argparse
import math
import os


class CliError(Exception):
    """An error the user can fix; printed as one line by the CLI."""


#: Exceptions shown to the user as one ``error:`` line (exit code 2) instead of a traceback:
#: bad arguments and files (ValueError, TypeError), and what the file system refuses (OSError:
#: missing, existing or foreign files, no permission, a read-only or full disk, a folder in use).
USER_ERRORS = (CliError, ValueError, TypeError, OSError)


def error_line(error):
    """One line for ``error``: its message, or for a bare OSError its reason and path."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        text = f"{error.strerror}: {error.filename}"
    elif isinstance(error, OSError) and error.strerror and len(error.args) == 2:
        text = error.strerror
    else:
        text = str(error) or type(error).__name__
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines) if lines else type(error).__name__


def integer(minimum=None):
    """An argparse type: an integer, at least ``minimum`` (the message names the value)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def number(low=None, high=None, high_open=False, low_open=False):
    """An argparse type: a finite number in the given interval (NaN and infinity refused by
    name)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if math.isnan(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got NaN ({text!r})")
        if math.isinf(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        below = low is not None and (value <= low if low_open else value < low)
        above = high is not None and (value >= high if high_open else value > high)
        if below or above:
            left = "(" if low_open or low is None else "["
            right = ")" if high_open or high is None else "]"
            lo = "-inf" if low is None else f"{low:g}"
            hi = "inf" if high is None else f"{high:g}"
            raise argparse.ArgumentTypeError(f"must lie in {left}{lo}, {hi}{right}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def existing_model_file(path, option="MODEL.keras"):
    """Refuse, before anything loads, a model path that is missing or not a ``.keras`` file."""
    if not os.path.exists(path):
        raise CliError(f"{option}: model file not found: {path}")
    if not path.endswith(".keras") or os.path.isdir(path):
        raise CliError(f"{option}: expected a Keras v3 model file ending in '.keras', got: "
                       f"{path}")


def check_out(args, reuse=False, hint="pass --force to write into it"):
    """Check ``--out`` without touching the disk (see :func:`keras_resnet_lab.outdir.check_out`)."""
    from keras_resnet_lab.outdir import check_out as check

    check(args.out, reuse=reuse, what="--out", hint=hint)


def add_run_arguments(parser):
    """``--seed``, ``--force`` and ``--quiet``, as every file-writing analysis command has them."""
    parser.add_argument("--seed", type=integer(0), default=0, help="seed of everything random")
    parser.add_argument("--force", action="store_true",
                        help="write into an --out that already holds files of an earlier run")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def load_model_file(path):
    """Load a ``.keras`` model safely (:func:`keras_resnet_lab.models.files.load_model_file`)."""
    from keras_resnet_lab.models.files import load_model_file as load

    return load(path)


def out_folder(args, kind, reuse=False, hint="pass --force to write into it"):
    """The command's ``--out`` folder, created and locked for a run of ``kind`` (a context
    manager, see :func:`keras_resnet_lab.outdir.owned_folder`)."""
    from keras_resnet_lab.outdir import owned_folder

    return owned_folder(args.out, kind, reuse=reuse, what="--out", hint=hint)
