"""The ``keras-resnet-lab`` command: one sub-command per module of ``keras_resnet_lab.commands``.

Each command module defines ``register(subparsers)``, which adds its parser and sets
``func=run``; heavy imports (TensorFlow) happen inside ``run`` so ``--help`` stays fast.
Errors the user can fix (bad arguments, missing or corrupt files, missing datasets) print
one ``error:`` line and exit with code 2; ``--debug`` shows the traceback instead.
"""

import argparse
import importlib
import pkgutil
import sys

from keras_resnet_lab import commands
from keras_resnet_lab.commands._common import USER_ERRORS


def build_parser():
    """The argument parser with every discovered sub-command."""
    parser = argparse.ArgumentParser(
        prog="keras-resnet-lab",
        description="Build, train, dissect, visualize and export residual networks.")
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
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
