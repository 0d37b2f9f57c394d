"""The ``keras-resnet-lab`` command: one sub-command per module of ``keras_resnet_lab.commands``.

Each command module defines ``register(subparsers)``, which adds its parser and sets
``func=run`` and, optionally, ``check=check``: a check of the arguments that needs neither
TensorFlow nor the disk. ``--help``, ``--version`` and every argument error are answered
before TensorFlow is imported (the ``keras-resnet-lab`` console script defers the package's
own imports, see ``keras_resnet_lab_cli``), and before anything is written. TensorFlow's
start-up logs are silenced unless ``TF_CPP_MIN_LOG_LEVEL=0`` asks for every log. Errors the
user can fix (bad arguments, missing, corrupt or foreign files, a folder in use, a full disk,
missing datasets) print one ``error:`` line and exit with code 2; ``--debug`` shows the
traceback instead.
"""

import argparse
import contextlib
import importlib
import os
import pkgutil
import sys
import tempfile

from keras_resnet_lab import __version__, commands
from keras_resnet_lab.commands._common import USER_ERRORS, error_line


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error:`` line naming the option and value."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser():
    """The argument parser with every discovered sub-command."""
    parser = Parser(
        prog="keras-resnet-lab",
        description="Build, train, dissect, visualize and export residual networks.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


@contextlib.contextmanager
def _quiet_native_logs():
    """Send what TensorFlow's native code prints while it loads (absl lines, oneDNN and CUDA
    notices) nowhere, unless the user asked for every log (``TF_CPP_MIN_LOG_LEVEL=0``);
    replayed on failure.

    TensorFlow prints these lines before its logging reads ``TF_CPP_MIN_LOG_LEVEL``, so the
    variable alone does not silence them: standard error is redirected while it loads. A
    level the user set is kept; unset, it is 2 (errors only) while TensorFlow loads.
    """
    user_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    if user_level == "0" or "tensorflow" in sys.modules:
        yield
        return
    # Read by TensorFlow as it loads; removed after, so that child processes (training
    # workers) start as quiet as this one instead of taking it for the user's setting.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = user_level or "2"
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if user_level is None:
                del os.environ["TF_CPP_MIN_LOG_LEVEL"]


def load_library():
    """Import TensorFlow and the package's layers and models (registering every serializable
    class), quietly."""
    with _quiet_native_logs():
        import tensorflow as tf

        tf.config.list_physical_devices()  # device discovery prints its notices now
        importlib.import_module("keras_resnet_lab.layers")
        importlib.import_module("keras_resnet_lab.models")
    tf.get_logger().setLevel("ERROR")


def main(argv=None):
    """Run the command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, or an argument error already printed
        return stop.code if isinstance(stop.code, int) else 2
    try:
        check = getattr(args, "check", None)
        if check is not None:
            check(args)
        load_library()
        return int(args.func(args) or 0)
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"error: {error_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
