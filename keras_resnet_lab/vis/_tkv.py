"""The bridge to tf-keras-vis: quiet import, safe model wrapping, seeded randomness, progress.

tf-keras-vis does the attribution and activation-maximization math; this module only prepares
our models for it, so that:

- its import does not emit scipy ``zoom`` DeprecationWarnings (``pytest -W error`` stays clean);
- it is given ``keras.Model([input], output)`` (it feeds inputs as a list, which a model built
  on a bare input tensor warns about);
- the user's model is never modified: every visualization that replaces the classifier's
  activation runs on a clone (``clone=True`` with ``ReplaceToLinear``), which works because
  every layer of the library is serializable;
- its random input modifiers and SmoothGrad noise (which draw from NumPy's global generator
  and from unseeded ``numpy.random.default_rng()`` instances) are reproducible under a seed,
  without leaving NumPy's global state changed.
"""

import contextlib
import functools
import types
import warnings

import numpy as np

from keras_resnet_lab import _keras_compat


@functools.lru_cache(maxsize=1)
def tkv():
    """tf-keras-vis's classes, imported once with its DeprecationWarnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from tf_keras_vis.activation_maximization import ActivationMaximization
        from tf_keras_vis.activation_maximization.callbacks import Callback
        from tf_keras_vis.activation_maximization.input_modifiers import Jitter, Rotate2D
        from tf_keras_vis.activation_maximization.regularizers import Norm, TotalVariation2D
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore
    return types.SimpleNamespace(
        ActivationMaximization=ActivationMaximization, Callback=Callback, Jitter=Jitter,
        Rotate2D=Rotate2D, Norm=Norm, TotalVariation2D=TotalVariation2D, Gradcam=Gradcam,
        GradcamPlusPlus=GradcamPlusPlus, Saliency=Saliency, Scorecam=Scorecam,
        ReplaceToLinear=ReplaceToLinear, CategoricalScore=CategoricalScore)


def single_input(model):
    """The model's one input tensor; raise ValueError for multi-input models."""
    inputs = list(getattr(model, "inputs", None) or [])
    if len(inputs) != 1:
        raise ValueError(f"`model` must have exactly one input to be visualized; "
                         f"'{getattr(model, 'name', model)}' has {len(inputs)}.")
    return inputs[0]


def classifier(model):
    """``keras.Model([input], scores)`` sharing ``model``'s layers, checked to end in class scores.

    Raises:
        ValueError: if the model has several inputs or outputs, or its output is not
            ``(batch, classes)`` (e.g. a model built with ``include_top=False``).
    """
    import keras

    inp = single_input(model)
    outputs = list(model.outputs)
    if len(outputs) != 1 or len(outputs[0].shape) != 2:
        shapes = ", ".join(str(tuple(o.shape)) for o in outputs)
        raise ValueError(f"`model` must output class scores of shape (batch, classes) to be "
                         f"explained; '{model.name}' outputs {shapes} (build it with "
                         "include_top=True).")
    return keras.Model([inp], outputs[0], name=model.name)


def num_classes(model):
    """Number of classes of a classifier built by :func:`classifier`."""
    return int(model.outputs[0].shape[-1])


def output_activation(model):
    """Name of the activation of the layer producing ``model``'s output ("linear" for logits)."""
    layer = _keras_compat.producing_operation(model.outputs[0])
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", "linear") if activation is not None else "linear"


def linear_modifier():
    """The model modifier that makes a (cloned) classifier output logits instead of softmax.

    Always passed, also for logit models (where it changes nothing): with a modifier,
    tf-keras-vis clones the model first, so the user's model is never modified.
    """
    return tkv().ReplaceToLinear()


def even_batch(x):
    """``x`` with its last item repeated when the batch size is odd.

    TensorFlow 2.21's oneDNN kernel for the input gradient of a strided 1x1 convolution (the
    projection shortcut of a downsampling block) corrupts the heap for odd batch sizes (the
    process aborts: "munmap_chunk(): invalid pointer"); even batches are exact. Every
    gradient taken here through a model therefore runs on an even batch, and callers keep the
    first ``len(x)`` results.
    """
    x = np.asarray(x)
    return x if len(x) % 2 == 0 else np.concatenate([x, x[-1:]], axis=0)


def even_list(values):
    """``values`` (a list) with its last item repeated when its length is odd."""
    values = list(values)
    return values if len(values) % 2 == 0 else values + values[-1:]


@contextlib.contextmanager
def numpy_seed(seed):
    """Seed NumPy's global generator inside the block, and restore its state afterwards.

    tf-keras-vis's ``Jitter`` and SmoothGrad noise draw from the global generator; this makes
    them reproducible without changing the caller's random stream. ``seed=None``: unseeded.
    """
    if seed is None:
        yield
        return
    # The legacy global generator is what tf-keras-vis draws from, so it is what is seeded.
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(int(seed) % (2**32))  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


class CompiledModel:
    """A model as tf-keras-vis's ActivationMaximization sees it, with a compiled forward pass.

    ActivationMaximization calls the model eagerly at every step, one operation at a time;
    this stand-in exposes what it reads (``inputs``, ``outputs``, ``layers``, ``name``) and
    runs the inference-mode forward pass as one ``tf.function``, a traced graph, which is
    several times faster (benchmarks/results/timings_behind_comments.md). Gradients flow
    through it as through the model.
    """

    def __init__(self, model):
        import tensorflow as tf

        self.model = model
        self.name = model.name
        self.inputs = model.inputs
        self.outputs = model.outputs
        self.layers = model.layers
        self._forward = tf.function(lambda xs: model(xs, training=False), reduce_retracing=True)
        # One function per visualized block is traced on purpose: TensorFlow's "frequent
        # retracing" warning (it counts traces per code object, across instances) is noise here.
        self._forward._omit_frequent_tracing_warning = True

    def __call__(self, inputs, training=False):
        if training:
            return self.model(inputs, training=True)
        return self._forward(list(inputs))


def make_progress_callback(total, description, enabled=True):
    """A tf-keras-vis activation-maximization callback showing a tqdm bar (or None)."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    base = tkv().Callback

    class _Progress(base):
        def on_begin(self, **kwargs):
            # disable=None: no bar (no control codes) where standard error is not a terminal
            self.bar = tqdm(total=total, desc=description, leave=False, unit="step",
                            disable=None)

        def __call__(self, i, values, grads, scores, model_outputs, **kwargs):
            self.bar.update(1)

        def on_end(self):
            self.bar.close()

    return _Progress()
