"""The ``keras-resnet-lab`` console script.

It imports ``keras_resnet_lab`` with its TensorFlow-backed imports deferred, so that
``--help``, ``--version`` and argument errors are answered in a fraction of a second; the
command then loads the library itself (:func:`keras_resnet_lab.cli.load_library`).
"""

import os
import sys

_DEFER = "KERAS_RESNET_LAB_DEFER_IMPORTS"


def main(argv=None):
    """Run ``keras-resnet-lab`` with the package's heavy imports deferred; the exit code."""
    os.environ[_DEFER] = "1"
    try:
        from keras_resnet_lab import cli
    finally:
        del os.environ[_DEFER]  # child processes (training workers) import it whole
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
