"""Stochastic depth: drop a residual branch per example while training (arXiv 1603.09382)."""

import keras
from keras import ops


def drop_path(x, rate, seed_generator, training):
    """Zero the whole branch ``x`` for a random fraction ``rate`` of the examples.

    Kept examples are scaled by ``1 / (1 - rate)`` so the expectation is unchanged; outside
    training the branch passes untouched.

    Args:
        x: branch output, batch first.
        rate: probability of dropping the branch of one example, in [0, 1).
        seed_generator: a ``keras.random.SeedGenerator`` owned by the calling layer.
        training: whether the call is a training call.
    """
    if not training or rate == 0.0:
        return x
    keep = 1.0 - rate
    shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
    mask = ops.floor(keep + keras.random.uniform(shape, seed=seed_generator, dtype=x.dtype))
    return x * (mask / keep)


def linear_drop_path_rates(rate, n_blocks):
    """Per-block drop-path rates that grow linearly from 0 to ``rate`` (the timm default)."""
    if n_blocks == 1:
        return [float(rate)]
    return [float(rate) * i / (n_blocks - 1) for i in range(n_blocks)]
