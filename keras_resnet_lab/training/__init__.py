"""Training: recipes (schedules, optimizers), callbacks, strategies, and a resumable ``fit``.

Takes Keras models, ``tf.data`` datasets or numpy arrays from the caller; imports no other
``keras_resnet_lab`` subpackage.

Example:
    >>> from keras_resnet_lab.training import fit, he_cifar_recipe  # doctest: +SKIP
    >>> result = fit(build_model, (x, y), epochs=164, recipe=he_cifar_recipe(),
    ...              out_dir="runs/resnet20", validation_data=(x_val, y_val))  # doctest: +SKIP
"""

from .atomic import atomic_path, atomic_write_json, save_model_atomic
from .callbacks import (
    HISTORY_FORMAT,
    AtomicModelCheckpoint,
    JsonHistory,
    TerminateOnNonFinite,
    history_columns,
    load_history,
)
from .loop import TrainResult, as_dataset, fit
from .losses import SparseCategoricalCrossentropyWithSmoothing, classification_loss
from .optimizers import CoupledWeightDecaySGD
from .plots import plot_history
from .recipes import (
    OPTIMIZERS,
    SCHEDULES,
    WEIGHT_DECAY_MODES,
    Recipe,
    compile_model,
    general_recipe,
    he_cifar_recipe,
    output_applies_softmax,
)
from .schedules import WARMUP_MODES, StepDecay, WarmupCosineDecay
from .strategy import STRATEGIES, get_strategy, is_chief, worker_id

__all__ = [
    "HISTORY_FORMAT",
    "OPTIMIZERS",
    "SCHEDULES",
    "STRATEGIES",
    "WARMUP_MODES",
    "WEIGHT_DECAY_MODES",
    "AtomicModelCheckpoint",
    "CoupledWeightDecaySGD",
    "JsonHistory",
    "Recipe",
    "SparseCategoricalCrossentropyWithSmoothing",
    "StepDecay",
    "TerminateOnNonFinite",
    "TrainResult",
    "WarmupCosineDecay",
    "as_dataset",
    "atomic_path",
    "atomic_write_json",
    "classification_loss",
    "compile_model",
    "fit",
    "general_recipe",
    "get_strategy",
    "he_cifar_recipe",
    "history_columns",
    "is_chief",
    "load_history",
    "output_applies_softmax",
    "plot_history",
    "save_model_atomic",
    "worker_id",
]
