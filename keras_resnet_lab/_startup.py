"""Starting TensorFlow quietly, after the arguments are checked (the CLI and worker processes).

TensorFlow prints lines from its native code while it loads (absl's pre-initialization notice,
oneDNN and CUDA notices) before its logging reads ``TF_CPP_MIN_LOG_LEVEL``: the variable alone
does not silence them. :func:`load_library` loads TensorFlow with standard error redirected,
unless the user asked for every log (``TF_CPP_MIN_LOG_LEVEL=0``), then imports this package's
layers and models (registering every serializable class). This module imports nothing heavy.
"""

import contextlib
import importlib
import os
import sys
import tempfile


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
        importlib.import_module("keras_resnet_lab.saving").register_all()
        importlib.import_module("keras_resnet_lab.layers")
        importlib.import_module("keras_resnet_lab.models")
    tf.get_logger().setLevel("ERROR")
