"""What the lab (and the findings atlas) train, as functions a worker process can run.

Each function takes only plain arguments and returns plain numbers, so that
:func:`keras_resnet_lab.parallel.run_jobs` can run it in another process; the trained model
is written to disk by :func:`keras_resnet_lab.training.fit` (resumable).
"""

from keras_resnet_lab._checks import one_of

#: The two training recipes the findings are measured under (both batch 64 on the digits):
#: He et al.'s SGD with momentum 0.9 and weight decay 5e-4 (learning rate 0.05 after one epoch
#: of warm-up at 0.005, /10 at 50% and 75%: He et al. warm up ResNet-110 the same way; without
#: it ResNet-56 on the 16x16 digits spikes to a loss of 4 in its first epoch and ends at 88%
#: test accuracy instead of 99%), and Adam without weight decay (2e-3, cosine decay).
RECIPES = ("sgd", "adam")
BATCH_SIZE = 64
#: Depth of the plain network the lesion study compares a deeper ResNet with: one that trains.
#: Veit et al. compared ResNet-110 with VGG-15, a shallower plain network that works; a plain
#: twin as deep as ResNet-56 is He et al.'s degraded network (40-56% test error on the 16x16
#: digits after 12 epochs, seeds 0-2), while plain-20 trains to 2.3% [1.4, 3.2] (both from
#: benchmarks/results/findings_atlas). Deleting one of its layers is what the claim is about.
LESION_PLAIN_DEPTH = 20


def recipe(name, epochs=None):
    """The training recipe ``name`` (one of :data:`RECIPES`) for a run of ``epochs`` (a run of
    one epoch has no warm-up)."""
    from keras_resnet_lab.training import general_recipe, he_cifar_recipe

    if one_of("recipe", name, RECIPES) == "sgd":
        warmup = 0 if epochs is not None and epochs < 2 else 1
        return he_cifar_recipe(base_lr=0.05, weight_decay=5e-4, warmup_epochs=warmup)
    return general_recipe("adamw", base_lr=2e-3, weight_decay=0.0, warmup_epochs=0)


def data(dataset, image_size, data_dir=None):
    """``((x_train, y_train), (x_test, y_test))`` numpy arrays of the lab's dataset."""
    import numpy as np

    if dataset == "digits":
        from keras_resnet_lab.data import load_digits

        return load_digits(image_size=image_size)
    from keras_resnet_lab.data import load_dataset

    splits = []
    for split in ("train", "test"):
        ds = load_dataset(dataset, split=split, batch_size=500, augment=False, shuffle=False,
                          data_dir=data_dir, image_size=image_size)
        if split == "test":
            ds = ds.take(2)  # 1,000 test images are plenty for the analyses
        xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in ds))
        splits.append((np.concatenate(xs), np.concatenate(ys)))
    return tuple(splits)


def train_network(out_dir, *, depth, plain, dataset="digits", image_size=16, epochs=12,
                  recipe_name="sgd", seed=0, data_dir=None, verbose=0):
    """Train the CIFAR ResNet-``depth`` (or its plain twin) into ``out_dir``; its history.

    Returns:
        ``{"parameters", "train_loss", "train_accuracy", "test_accuracy",
        "final_test_accuracy", "final_train_loss", "terminated"}`` (per-epoch lists).
    """
    import keras

    from keras_resnet_lab.models import cifar_resnet
    from keras_resnet_lab.training import fit

    (x_train, y_train), (x_test, y_test) = data(dataset, image_size, data_dir)
    name = f"resnet{depth}{'_plain' if plain else ''}"

    def build():
        keras.utils.set_random_seed(seed)
        return cifar_resnet(depth, plain=plain, input_shape=x_train.shape[1:], num_classes=10,
                            name=name)

    result = fit(build, (x_train, y_train), epochs, recipe(recipe_name, epochs), out_dir,
                 validation_data=(x_test, y_test), batch_size=BATCH_SIZE, seed=seed,
                 verbose=verbose)
    history = result.history
    return {"parameters": int(result.model.count_params()),
            "train_loss": list(history["loss"]),
            "train_accuracy": list(history["accuracy"]),
            "test_accuracy": list(history["val_accuracy"]),
            "final_test_accuracy": history["val_accuracy"][-1],
            "final_train_loss": history["loss"][-1],
            "terminated": result.terminated}


#: The analyses of a trained network and its plain twin, in the order they run:
#: ``(name, what it is)``; each result is saved as ``<name>.json``/``<name>.png``.
ANALYSES = (("lesion", "lesion study (residual and plain)"),
            ("paths", "gradient per path length"),
            ("refinement", "refinement (residual)"),
            ("estimation", "estimation error per stage (residual)"),
            ("filters", "filter refinement score (residual and plain)"),
            ("similarity_residual", "block similarity (residual)"),
            ("similarity_plain", "block similarity (plain)"))


def analyse_pair(residual, plain, data, *, lesion_plain=None, seed=0, draws=20,
                 path_samples=64, resamples=1000, say=None):
    """Measure every finding on a trained ResNet and its plain twin.

    Args:
        residual, plain: the two trained networks (same builder call, ``plain=True``).
        data: ``(x, y)`` test examples.
        lesion_plain: the trained plain network whose lesions the ResNet's are compared with
            (default ``plain``; see :data:`LESION_PLAIN_DEPTH`).
        seed: seed of the random draws and the bootstrap.
        draws: lesion draws per number of deleted blocks (and per swap count).
        path_samples: path-gradient samples per length.
        resamples: bootstrap resamples of every interval.
        say: optional callable receiving one progress line per analysis.

    Returns:
        ``(results, assessments)``: ``{name: result}`` (see :data:`ANALYSES`) and the list of
        :class:`keras_resnet_lab.findings.Assessment`.
    """
    from keras_resnet_lab.analysis.estimation import estimation_errors
    from keras_resnet_lab.analysis.filter_refinement import filter_refinement
    from keras_resnet_lab.analysis.lesion import lesion_study
    from keras_resnet_lab.analysis.paths import path_gradients
    from keras_resnet_lab.analysis.refinement import refinement
    from keras_resnet_lab.analysis.similarity import block_similarity, cka_assessment

    compute = {
        "lesion": lambda: lesion_study(residual, data, draws=draws, seed=seed,
                                       plain_model=plain if lesion_plain is None
                                       else lesion_plain, progress_bar=False),
        "paths": lambda: path_gradients(residual, data, samples_per_length=path_samples,
                                        seed=seed, progress_bar=False),
        "refinement": lambda: refinement(residual, data, progress_bar=False),
        "estimation": lambda: estimation_errors(residual, data, progress_bar=False),
        "filters": lambda: filter_refinement(residual, data, twin=plain, seed=seed,
                                             progress_bar=False),
        "similarity_residual": lambda: block_similarity(residual, data, progress_bar=False),
        "similarity_plain": lambda: block_similarity(plain, data, progress_bar=False),
    }
    results = {}
    for name, what in ANALYSES:
        if say is not None:
            say(f"  {what}")
        results[name] = compute[name]()
    assessments = []
    for name in ("lesion", "paths", "refinement", "estimation", "filters"):
        assessments += results[name].assessments(seed=seed, resamples=resamples)
    assessments.append(cka_assessment(results["similarity_residual"],
                                      results["similarity_plain"], seed=seed,
                                      resamples=resamples))
    return results, assessments


def training_error(model, x, y, batch_size=256):
    """Error of ``model`` on ``(x, y)`` in inference mode (moving batch-norm statistics)."""
    import numpy as np

    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) != y))


def measure_networks(out_dir, *, depth, dataset="digits", image_size=16, epochs=12,
                     recipe_name="sgd", seed=0, examples=360, draws=20, path_samples=64,
                     resamples=200, data_dir=None, result_file=None):
    """Train ResNet-``depth`` and its plain twin into ``out_dir`` and measure every finding
    on them (one condition and seed of the findings atlas).

    With ``result_file`` the returned dict is also written there (atomically) as soon as it
    is complete, so an interrupted atlas keeps every finished condition.

    Returns:
        ``{"train": {kind: history}, "train_error": {kind: error on the whole training set},
        "assessments": [Assessment.to_dict(), ...]}``.
    """
    import os

    from keras_resnet_lab.models.files import load_model_file

    (x_train, y_train), (x_test, y_test) = data(dataset, image_size, data_dir)
    train, errors, models = {}, {}, {}
    for kind in ("residual", "plain"):
        folder = os.path.join(out_dir, kind)
        train[kind] = train_network(folder, depth=depth, plain=kind == "plain",
                                    dataset=dataset, image_size=image_size, epochs=epochs,
                                    recipe_name=recipe_name, seed=seed, data_dir=data_dir)
        models[kind] = load_model_file(os.path.join(folder, "model.keras"))
        errors[kind] = training_error(models[kind], x_train, y_train)
    _, assessments = analyse_pair(models["residual"], models["plain"],
                                  (x_test[:examples], y_test[:examples]), seed=seed,
                                  draws=draws, path_samples=path_samples, resamples=resamples)
    result = {"train": train, "train_error": errors,
              "assessments": [a.to_dict() for a in assessments]}
    if result_file is not None:
        from keras_resnet_lab.atomic import atomic_write_json

        atomic_write_json(result, result_file)
    return result
