"""Shared fixtures: small models, a small trained digits model (trained once per session)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def digits16():
    """The embedded digits at 16x16x3: ((x_train, y_train), (x_test, y_test))."""
    from keras_resnet_lab.data import load_digits

    return load_digits(image_size=16, channels=3)


@pytest.fixture(scope="session")
def trained_digits(digits16):
    """A small residual network (2 blocks a stage, 8/16/32 channels) and its plain twin,
    trained on 16x16 digits for a few epochs: (model, plain_model, (x_test, y_test)).

    Takes about 20-30 s on 2 CPU cores; shared by the analysis, vis and export tests.
    """
    import keras

    from keras_resnet_lab.models import cifar_network

    (x_train, y_train), (x_test, y_test) = digits16
    models = []
    for plain in (False, True):
        keras.utils.set_random_seed(0)
        model = cifar_network(2, widths=(8, 16, 32), input_shape=x_train.shape[1:],
                              num_classes=10, plain=plain, shortcut="A",
                              name="digits_net_plain" if plain else "digits_net")
        model.compile(optimizer=keras.optimizers.Adam(3e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        model.fit(x_train, y_train, batch_size=64, epochs=6, verbose=0)
        models.append(model)
    return models[0], models[1], (x_test, y_test)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
