"""The lab: train a residual network and its plain twin, take both apart, look inside, ship.

Six steps, each resumable: ``train`` -> ``analysis`` -> ``findings`` -> ``vis`` -> ``export``
-> ``report``.
A finished step leaves ``steps/<name>.json`` (its numbers) in the output folder; with
``resume=True`` finished steps are skipped and their numbers read back, so an interrupted run
continues where it stopped (training itself resumes from its last finished epoch).
"""

import dataclasses
import json
import os
import time

import numpy as np

from keras_resnet_lab._checks import boolean, int_at_least, one_of, positive_int

STEPS = ("train", "analysis", "findings", "vis", "export", "report")
DATASETS = ("digits", "cifar10")
DEPTHS = (20, 32, 56, 110)
#: The training comparisons of the findings step (keras_resnet_lab.analysis.comparisons), on
#: the 8x8 digits; a --quick lab runs their smaller smoke settings.
COMPARISON_STEPS = ("multires", "highway", "scaling", "sharing", "looks_linear")


@dataclasses.dataclass
class LabConfig:
    """What the lab runs.

    Args:
        out: output folder.
        dataset: ``"digits"`` (embedded, offline) or ``"cifar10"`` (prepared tfds data).
        depth: CIFAR ResNet depth (20, 32, 56 or 110) of both networks.
        quick: small images, few epochs and samples (about 3 minutes on 2 CPU cores).
        epochs: training epochs (default 15, quick 8).
        data_dir: tensorflow-datasets folder for cifar10.
        seed: seed of everything random.
    """

    out: str = "lab-report"
    dataset: str = "digits"
    depth: int = 20
    quick: bool = False
    epochs: int | None = None
    data_dir: str | None = None
    seed: int = 0

    def __post_init__(self):
        one_of("dataset", self.dataset, DATASETS)
        self.depth = int(one_of("depth", self.depth, DEPTHS))
        self.quick = boolean("quick", self.quick)
        self.seed = int_at_least("seed", self.seed, 0)
        if self.epochs is None:
            self.epochs = 8 if self.quick else 15
        self.epochs = positive_int("epochs", self.epochs)

    @property
    def image_size(self):
        return 16 if self.quick and self.dataset == "digits" else 32

    def settings(self):
        """Sizes of the run: examples analysed, samples, optimization steps."""
        q = self.quick
        return {"analysis_examples": 200 if q else 360, "path_samples": 24 if q else 64,
                "lesion_draws": 2 if q else 5, "vis_steps": 40 if q else 100,
                "vis_filters": 3 if q else 4, "cam_images": 6 if q else 8,
                "hessian_depth": 16 if q else 32}


class Lab:
    """Runs the steps of :class:`LabConfig` into its output folder (see :func:`run_lab`)."""

    def __init__(self, config, progress=print):
        self.config = config
        self.out = os.path.abspath(config.out)
        self.say = progress or (lambda *_: None)
        self.numbers = {}
        self._models = {}
        self._data = None

    # -- folders and step bookkeeping -----------------------------------------------------
    def path(self, *parts):
        path = os.path.join(self.out, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def _marker(self, step):
        return os.path.join(self.out, "steps", f"{step}.json")

    def run(self, resume=False):
        """Run every step (skipping finished ones when ``resume``); returns the numbers."""
        from keras_resnet_lab.atomic import atomic_write_json

        total = time.time()
        for i, step in enumerate(STEPS, start=1):
            marker = self._marker(step)
            if resume and os.path.exists(marker):
                with open(marker, encoding="utf-8") as f:
                    self.numbers[step] = json.load(f)
                self.say(f"[{i}/{len(STEPS)}] {step}: already done, skipped")
                continue
            self.say(f"[{i}/{len(STEPS)}] {step} ...")
            start = time.time()
            numbers = getattr(self, f"step_{step}")()
            numbers["seconds"] = round(time.time() - start, 1)
            self.numbers[step] = numbers
            atomic_write_json(numbers, self.path("steps", f"{step}.json"))
            self.say(f"[{i}/{len(STEPS)}] {step}: done in {numbers['seconds']} s")
        self.say(f"lab finished in {time.time() - total:.0f} s: {self.path('report.html')}")
        return self.numbers

    # -- shared inputs ------------------------------------------------------------------
    def data(self):
        """``((x_train, y_train), (x_test, y_test))`` as numpy arrays."""
        if self._data is None:
            if self.config.dataset == "digits":
                from keras_resnet_lab.data import load_digits

                self._data = load_digits(image_size=self.config.image_size)
            else:
                self._data = tuple(self._arrays(split) for split in ("train", "test"))
        return self._data

    def _arrays(self, split):
        from keras_resnet_lab.data import load_dataset

        ds = load_dataset(self.config.dataset, split=split, batch_size=500, augment=False,
                          shuffle=False, data_dir=self.config.data_dir)
        if split == "test":
            ds = ds.take(2)  # 1,000 test images are plenty for the analyses
        xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in ds))
        return np.concatenate(xs), np.concatenate(ys)

    def model(self, kind):
        """The trained ``"residual"`` or ``"plain"`` network (loaded from the train step)."""
        if kind not in self._models:
            from keras_resnet_lab.commands._common import load_model_file

            self._models[kind] = load_model_file(self.path("train", kind, "model.keras"))
        return self._models[kind]

    def test_sample(self, count):
        (_, _), (x, y) = self.data()
        return x[:count], y[:count]

    # -- the steps ------------------------------------------------------------------------
    def step_train(self):
        import keras

        from keras_resnet_lab.models import cifar_resnet
        from keras_resnet_lab.training import fit, he_cifar_recipe

        (x_train, y_train), (x_test, y_test) = self.data()
        cfg, numbers = self.config, {}
        for kind in ("residual", "plain"):
            self.say(f"  training the {kind} network (ResNet-{cfg.depth}"
                     f"{' plain twin' if kind == 'plain' else ''}, {cfg.epochs} epochs)")

            def build(kind=kind):
                keras.utils.set_random_seed(cfg.seed)
                return cifar_resnet(cfg.depth, plain=kind == "plain",
                                    input_shape=x_train.shape[1:], num_classes=10,
                                    name=f"resnet{cfg.depth}{'_plain' if kind == 'plain' else ''}")

            result = fit(build, (x_train, y_train), cfg.epochs, he_cifar_recipe(),
                         os.path.join(self.out, "train", kind),
                         validation_data=(x_test, y_test),
                         batch_size=128, seed=cfg.seed, verbose=2 if cfg.quick else 1)
            if result.terminated:
                raise RuntimeError(f"training the {kind} network diverged: {result.terminated}")
            self._models[kind] = result.model
            history = result.history
            numbers[kind] = {
                "parameters": int(result.model.count_params()),
                "train_loss": list(history["loss"]),
                "train_accuracy": list(history["accuracy"]),
                "test_accuracy": list(history["val_accuracy"]),
                "final_test_accuracy": history["val_accuracy"][-1],
                "final_train_loss": history["loss"][-1],
            }
        self._plot_training(numbers, self.path("figures", "training.png"))
        return numbers

    def _plot_training(self, numbers, path):
        from keras_resnet_lab.analysis.results import new_figure, save_figure

        figure, (left, right) = new_figure(2, width=5.5, height=3.8)
        for kind, style in (("residual", "-"), ("plain", "--")):
            n = numbers[kind]
            epochs = np.arange(1, len(n["train_loss"]) + 1)
            left.plot(epochs, n["train_loss"], style, marker="o", ms=3, label=kind)
            right.plot(epochs, n["test_accuracy"], style, marker="o", ms=3, label=kind)
        left.set(title="training loss", xlabel="epoch", ylabel="loss")
        right.set(title="test accuracy", xlabel="epoch", ylabel="accuracy")
        for ax in (left, right):
            ax.legend()
            ax.grid(alpha=0.3)
        figure.suptitle(f"ResNet-{self.config.depth} and its plain twin on {self.config.dataset}")
        save_figure(figure, path)

    def step_analysis(self):
        from keras_resnet_lab.analysis.lesion import lesion_study
        from keras_resnet_lab.analysis.paths import path_gradients
        from keras_resnet_lab.analysis.refinement import refinement
        from keras_resnet_lab.analysis.similarity import block_similarity

        s = self.config.settings()
        data = self.test_sample(s["analysis_examples"])
        res, plain = self.model("residual"), self.model("plain")
        numbers = {}
        self.say("  lesion study (residual and plain)")
        lesion = lesion_study(res, data, plain_model=plain, draws=s["lesion_draws"],
                              seed=self.config.seed)
        self._save(lesion, "lesion")
        numbers["lesion"] = lesion.to_dict()
        self.say("  gradient per path length")
        paths = path_gradients(res, data, samples_per_length=s["path_samples"],
                               seed=self.config.seed)
        self._save(paths, "paths")
        numbers["paths"] = paths.to_dict()
        # Refinement separates a branch from its shortcut: defined for the residual network
        # only (the plain twin's deletions are in the lesion study, its CKA below).
        self.say("  refinement (residual)")
        ref = refinement(res, data)
        self._save(ref, "refinement")
        numbers["refinement"] = ref.to_dict()
        for kind, model in (("residual", res), ("plain", plain)):
            self.say(f"  block similarity ({kind})")
            sim = block_similarity(model, data)
            self._save(sim, f"similarity_{kind}")
            numbers[f"similarity_{kind}"] = sim.to_dict()
        return numbers

    def step_findings(self):
        """More of the papers' findings: on the lab's two networks, the estimation error
        (Greff et al.) and the filter refinement score against the plain twin (Chu et al.);
        built by the step itself, Li et al.'s Hessian at zero initialization and the training
        comparisons on the 8x8 digits (:data:`COMPARISON_STEPS`: multi-residual at equal
        parameters, highway depth, residual scaling, weight sharing, looks-linear init)."""
        from keras_resnet_lab.analysis.comparisons import COMPARISONS, run_comparison
        from keras_resnet_lab.analysis.estimation import estimation_errors
        from keras_resnet_lab.analysis.filter_refinement import filter_refinement
        from keras_resnet_lab.analysis.hessian import zero_init_hessian

        s = self.config.settings()
        data = self.test_sample(s["analysis_examples"])
        res, plain = self.model("residual"), self.model("plain")
        numbers = {}
        self.say("  estimation error per stage (residual)")
        estimation = estimation_errors(res, data)
        self._save(estimation, "estimation")
        numbers["estimation"] = estimation.to_dict()
        self.say("  filter refinement score (residual and plain)")
        filters = filter_refinement(res, data, twin=plain, seed=self.config.seed)
        self._save(filters, "filters")
        numbers["filters"] = filters.to_dict()
        self.say("  Hessian at zero initialization (linear nets, shortcuts of 1-3 layers)")
        hessian = zero_init_hessian(max_depth=s["hessian_depth"], seed=self.config.seed)
        self._save(hessian, "hessian")
        numbers["hessian"] = hessian.to_dict()
        for name in COMPARISON_STEPS:
            size = " (smaller networks and fewer epochs: --quick)" if self.config.quick else ""
            self.say(f"  {name}: {COMPARISONS[name].description}{size}")
            result = run_comparison(name, seed=self.config.seed, smoke=self.config.quick,
                                    progress_bar=False)
            self._save(result, name)
            numbers[name] = result.to_dict()
        return numbers

    def _save(self, result, name):
        result.to_json(self.path("analysis", f"{name}.json"))
        result.plot(self.path("figures", f"{name}.png"))

    def step_vis(self):
        from keras_resnet_lab.data import digit_layout
        from keras_resnet_lab.models import stages
        from keras_resnet_lab.vis import cam, refinement_view

        s = self.config.settings()
        res = self.model("residual")
        images, _ = self.test_sample(s["cam_images"])
        last_blocks = [infos[-1].name for infos in stages(res).values()]
        numbers = {"cam_blocks": last_blocks, "cam_digit_share": {}}
        size, border = digit_layout(images.shape[1])
        inside = np.zeros(images.shape[1:3], bool)
        inside[border:border + size, border:border + size] = True
        for name in last_blocks:
            maps = cam(res, images, block=name, method="gradcam",
                       path=self.path("figures", f"gradcam_{name}.png")).maps
            total = maps.sum(axis=(1, 2)) + 1e-12
            share = float(np.mean(maps[:, inside].sum(axis=1) / total))
            numbers["cam_digit_share"][name] = share
        numbers["digit_area_share"] = float(inside.mean())
        views = {}
        for kind in ("residual", "plain"):
            view = refinement_view(self.model(kind), stage=2,
                                   filter_index=list(range(s["vis_filters"])),
                                   steps=s["vis_steps"], seed=self.config.seed,
                                   path=self.path("figures", f"refinement_{kind}.png"))
            views[kind] = {"same_filter": view.mean_same_filter_similarity,
                           "other_filters": view.other_filter_similarity,
                           "blocks": list(view.blocks)}
        numbers["refinement_view"] = views
        return numbers

    def step_export(self):
        from keras_resnet_lab.export import export_model

        res = self.model("residual")
        sample = self.test_sample(8)[0]
        manifests = export_model(res, os.path.join(self.out, "export"), overwrite=True,
                                 sample=sample)
        numbers = {}
        for fmt, manifest in manifests.items():
            parity = manifest.parity
            numbers[fmt] = {"passed": bool(parity["passed"]),
                            "worst_output": parity["worst_output"],
                            "worst_diff": float(parity["worst_diff"]),
                            "outputs": len(manifest.outputs)}
        return numbers

    def step_report(self):
        from keras_resnet_lab.lab.report import write_report

        return write_report(self)


def run_lab(config, resume=False, force=False, progress=print):
    """Run the lab described by ``config``; returns the numbers of every step.

    Args:
        config: a :class:`LabConfig`.
        resume: continue an interrupted run in ``config.out``, skipping finished steps.
        force: start over in a folder that already holds results.
        progress: callable receiving one line per event (None: silent).

    Raises:
        FileExistsError: ``config.out`` holds results and neither ``resume`` nor ``force``.

    Example:
        >>> numbers = run_lab(LabConfig(out="lab-report", quick=True))  # doctest: +SKIP
    """
    from keras_resnet_lab.outdir import owned_folder, remove_folder_atomically

    if not isinstance(config, LabConfig):
        raise ValueError(f"`config` must be a LabConfig, got {type(config).__name__}.")
    resume, force = boolean("resume", resume), boolean("force", force)
    if resume and force:
        raise ValueError("`resume` and `force` exclude each other: resume continues an "
                         "interrupted run, force starts over.")
    hint = ("pass --force to start over or --resume to continue an interrupted run "
            "(run_lab(force=True) / run_lab(resume=True))")
    with owned_folder(config.out, "lab", reuse=resume or force, hint=hint) as out:
        if force:
            # Only our own earlier results are removed (owned_folder refused anything else),
            # each folder whole or not at all.
            remove_folder_atomically(os.path.join(out, "steps"))
            for kind in ("residual", "plain"):
                remove_folder_atomically(os.path.join(out, "train", kind))
        return Lab(config, progress).run(resume=resume)
