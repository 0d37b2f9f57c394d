"""Inference-time fusion of a convolution and its batch norm, kept apart from the blocks.

The blocks say what they compute, ``norm(conv(x))``; :func:`conv_norm`, the one entry point,
decides how. At inference a batch norm is the per-channel affine map ``y * s + (beta - mean *
s)`` with ``s = gamma / sqrt(moving_variance + epsilon)``, so ``norm(conv(x))`` equals one
convolution with the kernel scaled by ``s`` plus a bias: the batch norm's passes over the
activations are gone. The kernel is rescaled from the current weights at every call (nothing
is stored, so training, saving and the weights are unchanged), which costs a pass over the
kernel: a convolution is folded only where that pass is smaller than the activations it saves
(:func:`fold_pays`). Training, mixed precision (which keeps Keras's float32 batch norm) and
layers not yet built run the two layers as they are.

The blocks turn it off with ``BlockBase.fold_batch_norm = False`` (class-wide, or on one
block); ``benchmarks/models_bench.py`` measures both.
"""

import keras
from keras import ops


def conv_norm(conv, norm, x, training, fold=True):
    """``norm(conv(x))`` (``conv(x)`` when ``norm`` is None), the batch norm folded into the
    convolution when ``fold`` is set and :func:`can_fold` allows it.

    Args:
        conv: a ``Conv2D`` (or subclass) or ``Dense`` layer.
        norm: a ``BatchNormalization`` over the last axis, or None.
        x: the convolution's input (already padded).
        training: the call's training flag (a training call never folds).
        fold: whether folding is allowed at all.
    """
    if fold and can_fold(conv, norm, x, training):
        return folded(conv, norm, x)
    y = conv(x)
    return y if norm is None else norm(y, training=training)


def can_fold(conv, norm, x, training):
    """Whether :func:`conv_norm` folds ``norm`` into ``conv`` for this call: inference, both
    built, float32, the norm over the last axis, and :func:`fold_pays`."""
    return (norm is not None and not training and conv.built and norm.built
            and conv.compute_dtype == "float32"
            and norm.axis in (-1, len(x.shape) - 1) and fold_pays(conv, x))


def folded(conv, norm, x):
    """``norm(conv(x))`` at inference as one convolution (or matmul) with a rescaled kernel
    and a bias."""
    scale = ops.rsqrt(norm.moving_variance + norm.epsilon)
    if norm.scale:
        scale = norm.gamma * scale
    shift = -norm.moving_mean * scale
    if norm.center:
        shift = shift + norm.beta
    if conv.use_bias:
        shift = shift + conv.bias * scale
    kernel = conv.kernel * scale  # the output channels are the kernel's last axis
    if isinstance(conv, keras.layers.Dense):
        return ops.add(ops.matmul(x, kernel), shift)
    return ops.add(conv.convolution_op(x, kernel), shift)


def fold_pays(conv, x):
    """Whether rescaling ``conv``'s kernel moves fewer numbers than the batch norm it would
    replace: kernel elements per output channel (``kh * kw * in_channels / groups``) below the
    output positions (``batch * height * width``, batch 1 when unknown). That holds for the
    large early feature maps at any batch and for most layers at batch 32; unknown spatial
    sizes never fold."""
    batch = x.shape[0] or 1
    if isinstance(conv, keras.layers.Dense):
        return int(x.shape[-1]) < batch
    output = conv.compute_output_shape(tuple(x.shape))
    if output[1] is None or output[2] is None:
        return False
    per_channel = conv.kernel_size[0] * conv.kernel_size[1] * int(x.shape[-1]) // conv.groups
    return per_channel < batch * int(output[1]) * int(output[2])
