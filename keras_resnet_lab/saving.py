"""Every module of this package that registers classes for Keras saving.

``import keras_resnet_lab`` imports them all (and so does the command line before it runs a
command), so that every file the package writes (a model from ``train``, the lab, ``fit``,
with its optimizer, learning-rate schedule and loss) loads with ``keras.models.load_model``
after ``import keras_resnet_lab``, with ``compile=True`` as with ``compile=False``.
``tests/test_saving.py`` checks that no registering module is missing here.
"""

import importlib

#: The modules with ``@keras.saving.register_keras_serializable`` classes.
MODULES = (
    "keras_resnet_lab.layers.batch_norm",
    "keras_resnet_lab.layers.conv",
    "keras_resnet_lab.layers.highway",
    "keras_resnet_lab.layers.looks_linear",
    "keras_resnet_lab.layers.residual",
    "keras_resnet_lab.layers.shared",
    "keras_resnet_lab.layers.squeeze_excite",
    "keras_resnet_lab.models.surgery",
    "keras_resnet_lab.training.losses",
    "keras_resnet_lab.training.optimizers",
    "keras_resnet_lab.training.schedules",
)


def register_all():
    """Import every module of :data:`MODULES` (registering their classes); idempotent."""
    for name in MODULES:
        importlib.import_module(name)
