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
import importlib
import pkgutil
import sys

from keras_resnet_lab import __version__, commands
from keras_resnet_lab._startup import load_library
from keras_resnet_lab.commands._common import USER_ERRORS, error_line


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written, and every option's default in its help (unless the help
    already says it; switches are off by default, required options have none)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text.lower() or not action.option_strings or action.required
                or action.default is False or action.default is argparse.SUPPRESS):
            return text
        shown = "none" if action.default is None else "%(default)s"
        return f"{text} (default: {shown})" if text else f"default: {shown}"


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error:`` line naming the option and value,
    and whose help shows every option's default."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser():
    """The argument parser with every discovered sub-command."""
    parser = Parser(
        prog="keras-resnet-lab",
        description="Build, train, dissect, visualize and export residual networks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


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
