"""Mixed precision: build a model under a Keras dtype policy, with its outputs in float32.

Under ``mixed_float16`` (GPUs with tensor cores) or ``mixed_bfloat16`` (TPUs, CPUs with
AMX/AVX512-BF16) every layer keeps float32 variables and computes in the half type; the blocks
of this library pass their policy to their sub-layers, so a whole residual block computes in
half precision. The logits should stay float32 (a softmax/cross-entropy in float16 overflows):
``mixed_precision_model`` builds the model under the policy and then switches the output
layer(s) to float32 (Keras's own advice, https://keras.io/api/mixed_precision/).

Loss scaling: ``model.compile`` wraps the optimizer in ``keras.optimizers.LossScaleOptimizer``
by itself when the model's policy is ``mixed_float16`` (bfloat16 needs none).

Example:
    >>> model = mixed_precision_model(lambda: cifar_resnet(20), "mixed_float16")  # doctest: +SKIP
    >>> model.output.dtype, model.get_layer("stage1_block1").compute_dtype  # doctest: +SKIP
    ('float32', 'float16')
"""

from __future__ import annotations

import contextlib

import keras

from keras_resnet_lab import _keras_compat

__all__ = ["POLICIES", "float32_outputs", "mixed_precision_model", "policy_scope",
           "resolve_policy"]

#: Accepted policy names; ``None`` means ``"float32"``.
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")

#: Short names accepted by ``resolve_policy`` (the command line's ``--mixed-precision``).
_ALIASES = {"float16": "mixed_float16", "fp16": "mixed_float16", "bfloat16": "mixed_bfloat16",
            "bf16": "mixed_bfloat16", "fp32": "float32"}


def resolve_policy(policy):
    """The canonical policy name for ``policy``.

    Accepts ``None`` (float32), one of ``POLICIES``, or the short names ``"float16"``,
    ``"bfloat16"`` (``"fp16"``, ``"bf16"``, ``"fp32"``).

    Args:
        policy: the name.

    Example:
        >>> resolve_policy("float16"), resolve_policy(None)
        ('mixed_float16', 'float32')
    """
    if policy is None:
        return "float32"
    name = _ALIASES.get(policy, policy) if isinstance(policy, str) else policy
    if name not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES} (or float16, bfloat16, None), "
                         f"got policy={policy!r}")
    return name


@contextlib.contextmanager
def policy_scope(policy):
    """Set Keras's global dtype policy for the body, and restore the previous one after.

    Layers take the global policy when they are *created*, so build the model inside.

    Args:
        policy: a name accepted by ``resolve_policy``.

    Example:
        >>> with policy_scope("mixed_bfloat16"):
        ...     layer = keras.layers.Dense(2)
        >>> layer.compute_dtype, keras.mixed_precision.global_policy().name
        ('bfloat16', 'float32')
    """
    name = resolve_policy(policy)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield name
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _producer(tensor):
    made = _keras_compat.producer(tensor)
    if made is None:
        raise ValueError("model must be a functional keras.Model (its outputs must come from "
                         "layers called on keras.Input tensors)")
    return made


def float32_outputs(model):
    """``model`` with every output computed in float32 (the same layers, shared).

    Each output layer whose compute dtype is not float32 (the ``predictions`` dense layer of
    a model built under a mixed policy) gets the float32 policy and is called again on its
    own input; the returned functional model shares every layer (and weight) with ``model``
    and keeps its name and layer names. A model whose outputs are already float32 is returned
    unchanged. Only ``model``'s outputs change; the hidden layers keep their policy.

    Args:
        model: a functional ``keras.Model``.

    Returns:
        A ``keras.Model``.

    Example:
        >>> with policy_scope("mixed_float16"):
        ...     inp = keras.Input((4,))
        ...     mixed = keras.Model(inp, keras.layers.Dense(2)(inp))
        >>> float32_outputs(mixed).output.dtype
        'float32'
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got model={type(model).__name__}")
    outputs = list(model.outputs or [])
    if not outputs:
        raise ValueError(f"model must be a functional model with outputs, got {model.name!r}")
    if all(keras.backend.standardize_dtype(t.dtype) == "float32" for t in outputs):
        return model

    def to_float32(tensor):
        if keras.backend.standardize_dtype(tensor.dtype) == "float32":
            return tensor
        layer, node = _producer(tensor)
        layer.dtype_policy = "float32"
        args, kwargs = _keras_compat.node_arguments(node)
        result = layer(*args, **kwargs)
        if isinstance(result, (list, tuple, dict)):
            raise ValueError(f"output layer {layer.name!r} returns several tensors; "
                             "float32_outputs supports single-tensor output layers")
        return result

    return keras.Model(model.input, keras.tree.map_structure(to_float32, model.output),
                       name=model.name)


def mixed_precision_model(model_fn, policy="mixed_float16"):
    """Build ``model_fn()`` under ``policy`` and return it with float32 outputs.

    With ``policy`` float32 (or ``None``) this is just ``model_fn()``. Otherwise the global
    policy is set while ``model_fn`` runs (and restored after), then ``float32_outputs``
    makes the logits float32: the blocks and every hidden layer compute in float16/bfloat16
    with float32 variables (Micikevicius et al., "Mixed Precision Training", arXiv 1710.03740).
    A subclassed model (no symbolic outputs) is returned as built: give its last layer
    ``dtype="float32"`` yourself.

    Args:
        model_fn: zero-argument callable returning a functional ``keras.Model``.
        policy: ``"mixed_float16"`` (GPU), ``"mixed_bfloat16"`` (TPU, recent CPUs),
            ``"float32"``/``None``, or a short name (``"float16"``, ``"bfloat16"``).

    Returns:
        The ``keras.Model``.

    Example:
        >>> model = mixed_precision_model(
        ...     lambda: cifar_network(1, widths=(4, 8), input_shape=(8, 8, 3)),
        ...     "mixed_float16")  # doctest: +SKIP
        >>> model.output.dtype  # doctest: +SKIP
        'float32'
    """
    if not callable(model_fn) or isinstance(model_fn, keras.Model):
        raise ValueError("model_fn must be a zero-argument callable building the model "
                         f"(layers take the policy when created), got {type(model_fn).__name__}")
    name = resolve_policy(policy)
    if name == "float32":
        return model_fn()
    with policy_scope(name):
        model = model_fn()
        if not isinstance(model, keras.Model):
            raise ValueError(f"model_fn must return a keras.Model, got {type(model).__name__}")
        if not getattr(model, "outputs", None):
            return model  # subclassed: its last layer must set dtype="float32" itself
        return float32_outputs(model)
