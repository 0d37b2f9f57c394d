"""Shared fixtures: small models, a small trained digits model (trained once per session)."""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several test processes share the cores: one TensorFlow thread each, so that no thread
    # pool spins waiting for a core another process holds (the tests' models are tiny; the
    # processes the tests start inherit this).
    for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

#: Test files that take a minute or more, longest first: run before the rest so that the
#: workers (``-n 3 --dist loadfile --no-loadscope-reorder``, pyproject.toml) finish together
#: instead of one waiting on a late long file.
LONG_FILES = ("test_lab.py", "test_reliability.py", "test_analysis.py", "test_vis.py",
              "test_strategy.py", "test_cli.py", "test_estimation_filter_refinement.py",
              "test_analysis_scripts.py", "test_properties.py", "test_precision.py",
              "test_export.py", "test_options.py")


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        name = item.path.name
        return LONG_FILES.index(name) if name in LONG_FILES else len(LONG_FILES)

    items.sort(key=rank)  # stable: the order inside each file is kept


@pytest.fixture(scope="session")
def digits16():
    """The embedded digits at 16x16x3: ((x_train, y_train), (x_test, y_test))."""
    from keras_resnet_lab.data import load_digits

    return load_digits(image_size=16, channels=3)


@pytest.fixture(scope="session")
def trained_digits(digits16, tmp_path_factory):
    """A small residual network (2 blocks a stage, 8/16/32 channels) and its plain twin,
    trained on 16x16 digits for a few epochs: (model, plain_model, (x_test, y_test)).

    Training takes a while (benchmarks/results/timings_behind_comments.md), so the analysis
    and vis tests share it. Trained once per test run: under ``-n N`` the first worker to
    need it trains and saves it, the others load the saved files.
    """
    import keras

    import keras_resnet_lab  # noqa: F401  (registers the layers for loading)

    _, (x_test, y_test) = digits16
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # one process: nothing to share
        models = _train_digits(digits16)
        return models[0], models[1], (x_test, y_test)
    shared = tmp_path_factory.getbasetemp().parent  # the run's folder, common to its workers
    paths = [shared / "trained_digits.keras", shared / "trained_digits_plain.keras"]
    try:
        claim = os.open(shared / "trained_digits.lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:  # another worker trains (or trained) them: wait for its files
        deadline = time.time() + 600
        while not all(p.exists() for p in paths):
            assert time.time() < deadline, "the worker training trained_digits did not finish"
            time.sleep(0.5)
        models = [keras.models.load_model(p) for p in paths]
        return models[0], models[1], (x_test, y_test)
    os.close(claim)
    models = _train_digits(digits16)
    for model, path in zip(models, paths):
        partial = path.with_name(path.stem + ".partial.keras")
        model.save(partial)
        os.replace(partial, path)  # complete files only: the others wait for these names
    return models[0], models[1], (x_test, y_test)


def _train_digits(digits16):
    import keras

    from keras_resnet_lab.models import cifar_network

    (x_train, y_train), _ = digits16
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
    return models


@pytest.fixture(scope="module")
def digits256():
    """256 training digits at 8x8x3 and the test digits: ((x, y), (x_test, y_test)), for the
    tiny runs of the training comparisons."""
    from keras_resnet_lab.analysis._training import training_digits

    (x, y), test = training_digits(8, 3, batch_size=64)
    return (x[:256], y[:256]), test


@pytest.fixture
def rng():
    return np.random.default_rng(0)
