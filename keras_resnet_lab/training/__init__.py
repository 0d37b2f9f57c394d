"""Training: recipes (schedules, optimizers), callbacks, strategies, and a resumable ``fit``.

Takes Keras models, ``tf.data`` datasets or numpy arrays from the caller; imports no other
``keras_resnet_lab`` subpackage.

Example:
    >>> from keras_resnet_lab.training import fit, he_cifar_recipe  # doctest: +SKIP
    >>> result = fit(build_model, (x, y), epochs=164, recipe=he_cifar_recipe(),
    ...              out_dir="runs/resnet20", validation_data=(x_val, y_val))  # doctest: +SKIP
"""

from keras_resnet_lab.atomic import atomic_path, atomic_write_json, save_model_atomic
from keras_resnet_lab.training.callbacks import (
    HISTORY_FORMAT,
    AtomicBackupAndRestore,
    AtomicModelCheckpoint,
    JsonHistory,
    TerminateOnNonFinite,
    history_columns,
    load_history,
)
from keras_resnet_lab.training.loop import TrainResult, as_dataset, fit
from keras_resnet_lab.training.losses import (
    SparseCategoricalCrossentropyWithSmoothing,
    classification_loss,
)
from keras_resnet_lab.training.optimizers import CoupledWeightDecaySGD
from keras_resnet_lab.training.plots import plot_history
from keras_resnet_lab.training.precision import (
    POLICIES,
    float32_outputs,
    mixed_precision_model,
    policy_scope,
    resolve_policy,
)
from keras_resnet_lab.training.recipes import (
    OPTIMIZERS,
    SCHEDULES,
    WEIGHT_DECAY_MODES,
    Recipe,
    compile_classifier,
    compile_model,
    general_recipe,
    he_cifar_recipe,
    output_applies_softmax,
)
from keras_resnet_lab.training.schedules import WARMUP_MODES, StepDecay, WarmupCosineDecay
from keras_resnet_lab.training.strategy import (
    STRATEGIES,
    free_ports,
    get_strategy,
    is_chief,
    is_multi_worker,
    launch_local_workers,
    patch_for_multi_worker,
    tf_config,
    worker_id,
)

__all__ = [
    "HISTORY_FORMAT",
    "OPTIMIZERS",
    "POLICIES",
    "SCHEDULES",
    "STRATEGIES",
    "WARMUP_MODES",
    "WEIGHT_DECAY_MODES",
    "AtomicBackupAndRestore",
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
    "float32_outputs",
    "free_ports",
    "is_multi_worker",
    "launch_local_workers",
    "mixed_precision_model",
    "patch_for_multi_worker",
    "policy_scope",
    "resolve_policy",
    "tf_config",
    "compile_classifier",
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
