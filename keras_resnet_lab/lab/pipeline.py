"""The lab: train a residual network and its plain twin, take both apart, test the papers'
findings with their uncertainty, look inside, ship.

Five steps, each resumable: ``train`` -> ``analysis`` -> ``vis`` -> ``export`` -> ``report``.

- ``train``: everything that trains, as one pool of jobs in worker processes (longest first):
  the CIFAR ResNet and its plain twin (same layers, no shortcuts), the plain network its
  lesions are compared with when the twin is deeper than one that trains (plain-20, as Veit
  et al. compared ResNet-110 with the shallower VGG-15), and every seeded
  experiment for three seeds: the findings that train their own small networks (He et al.'s
  depth comparison, highway depth and gates, multi-residual, residual scaling, weight
  sharing, looks-linear initialization) and the computations at initialization (shattered
  gradients, the Hessian), each judged over its seeds.
- ``analysis``: the findings measured on the two networks (lesions, path gradients,
  refinement, estimation, filters, block similarity), each with a bootstrap interval over the
  test examples (and draws, channels).
- ``vis``, ``export``, ``report``: Grad-CAM and the refinement view, the exported artifacts, and
  ``report.html`` + ``summary.json``, where every finding carries its registry rule, its
  estimate with an interval and its verdict (:mod:`keras_resnet_lab.findings`).

A finished step leaves ``steps/<name>.json`` (its numbers) in the output folder; with
``resume=True`` finished steps are skipped and their numbers read back (training itself
resumes from its last finished epoch).
"""

import dataclasses
import json
import os
import time

import numpy as np

from keras_resnet_lab._checks import boolean, int_at_least, one_of, positive_int
from keras_resnet_lab.lab import jobs

STEPS = ("train", "analysis", "vis", "export", "report")
DATASETS = ("digits", "cifar10")
DEPTHS = (20, 32, 44, 56, 110)
#: The default scale, where the ensemble behaviour and the plain net's degradation show on
#: the digits within the time budget (benchmarks/findings_atlas.py measured it): ResNet-56 on
#: 16x16 images costs about what ResNet-20 does on 32x32.
DEFAULT_DEPTH, QUICK_DEPTH = 56, 20
#: The seeded experiments of the train step (keras_resnet_lab.catalog.COMPARISONS), longest
#: first; ``--quick`` runs their smaller smoke settings.
COMPARISON_STEPS = ("depth", "highway", "sharing", "multires", "looks_linear", "scaling",
                    "shattering", "hessian")
#: Seeds per seeded experiment: the lab's --seed and the next ones.
SEED_COUNT = 3


@dataclasses.dataclass
class LabConfig:
    """What the lab runs.

    Args:
        out: output folder.
        dataset: ``"digits"`` (embedded, offline) or ``"cifar10"`` (prepared tfds data).
        depth: CIFAR ResNet depth of both networks (default 56; 20 with ``quick``).
        quick: small images and networks, few epochs, smoke settings of the comparisons
            (about 3 minutes on 2 CPU cores); more findings end *inconclusive*.
        epochs: training epochs (default 12, quick 6).
        recipe: ``"sgd"`` (He et al.'s SGD with weight decay) or ``"adam"`` (Adam, no weight
            decay): see :data:`keras_resnet_lab.lab.jobs.RECIPES`.
        data_dir: tensorflow-datasets folder for cifar10.
        seed: seed of everything random; the seeded experiments use it and the next two.
        processes: worker processes for the training (default: up to 2).
    """

    out: str = "lab-report"
    dataset: str = "digits"
    depth: int | None = None
    quick: bool = False
    epochs: int | None = None
    recipe: str = "sgd"
    data_dir: str | None = None
    seed: int = 0
    processes: int | None = None

    def __post_init__(self):
        one_of("dataset", self.dataset, DATASETS)
        self.quick = boolean("quick", self.quick)
        if self.depth is None:
            self.depth = QUICK_DEPTH if self.quick else DEFAULT_DEPTH
        self.depth = int(one_of("depth", self.depth, DEPTHS))
        self.seed = int_at_least("seed", self.seed, 0)
        self.recipe = one_of("recipe", self.recipe, jobs.RECIPES)
        if self.epochs is None:
            self.epochs = 6 if self.quick else 12
        self.epochs = positive_int("epochs", self.epochs)
        if self.processes is None:
            self.processes = max(1, min(2, os.cpu_count() or 1))
        self.processes = positive_int("processes", self.processes)

    @property
    def image_size(self):
        if self.dataset != "digits":
            return 32
        return 8 if self.quick else 16

    def networks(self):
        """``{kind: depth}`` of the CIFAR networks the train step trains: ``"residual"``,
        its ``"plain"`` twin and, for a twin deeper than
        :data:`keras_resnet_lab.lab.jobs.LESION_PLAIN_DEPTH`, ``"lesion_plain"``: the plain
        network of that depth, which the lesion study compares the ResNet with."""
        nets = {"residual": self.depth, "plain": self.depth}
        if self.depth > jobs.LESION_PLAIN_DEPTH:
            nets["lesion_plain"] = jobs.LESION_PLAIN_DEPTH
        return nets

    @property
    def lesion_plain(self):
        """The kind of network (see :meth:`networks`) the lesion study compares with."""
        return "lesion_plain" if "lesion_plain" in self.networks() else "plain"

    @property
    def seeds(self):
        return tuple(range(self.seed, self.seed + SEED_COUNT))

    def settings(self):
        """Sizes of the run: examples analysed, draws, samples, optimization steps."""
        q = self.quick
        return {"analysis_examples": 200 if q else 360, "path_samples": 24 if q else 64,
                "lesion_draws": 20, "vis_steps": 40 if q else 60,
                "vis_filters": 3, "cam_images": 6 if q else 8}


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
            cfg = self.config
            self._data = jobs.data(cfg.dataset, cfg.image_size, cfg.data_dir)
        return self._data

    def model(self, kind):
        """The trained network ``kind`` of :meth:`LabConfig.networks` (from the train step)."""
        if kind not in self._models:
            from keras_resnet_lab.models.files import load_model_file

            self._models[kind] = load_model_file(self.path("train", kind, "model.keras"))
        return self._models[kind]

    def test_sample(self, count):
        (_, _), (x, y) = self.data()
        return x[:count], y[:count]

    def _jobs(self, job_list, what):
        from keras_resnet_lab.parallel import run_jobs

        def report(name, done, total):
            self.say(f"  {what}: {name} done ({done}/{total})")

        return run_jobs(job_list, processes=self.config.processes, progress=report)

    # -- the steps ------------------------------------------------------------------------
    def step_train(self):
        """The two networks and every seeded experiment, in one pool of worker processes."""
        from keras_resnet_lab.analysis.comparisons import SeededComparison, settings_of
        from keras_resnet_lab.parallel import Job

        cfg = self.config
        networks = cfg.networks()
        extra = ("" if cfg.lesion_plain == "plain" else
                 f", plain-{networks['lesion_plain']} for the lesion comparison")
        self.say(f"  ResNet-{cfg.depth} and its plain twin{extra} ({cfg.epochs} epochs, "
                 f"{cfg.image_size}x{cfg.image_size} {cfg.dataset}, recipe {cfg.recipe}) and "
                 f"{len(COMPARISON_STEPS)} seeded experiments x seeds "
                 f"{', '.join(map(str, cfg.seeds))}"
                 f"{' (smoke settings: --quick)' if cfg.quick else ''}, in {cfg.processes} "
                 "processes")
        kinds = tuple(networks)
        job_list = [Job("keras_resnet_lab.lab.jobs:train_network", dict(
            out_dir=os.path.join(self.out, "train", kind), depth=networks[kind],
            plain=kind != "residual", dataset=cfg.dataset, image_size=cfg.image_size,
            epochs=cfg.epochs, recipe_name=cfg.recipe, seed=cfg.seed, data_dir=cfg.data_dir),
            f"train {kind}") for kind in kinds]
        settings = {name: settings_of(name, smoke=cfg.quick) for name in COMPARISON_STEPS}
        job_list += [Job("keras_resnet_lab.analysis.comparisons:run_seed",
                         dict(name=name, seed=seed, settings=settings[name]),
                         f"{name} seed {seed}")
                     for name in COMPARISON_STEPS for seed in cfg.seeds]
        runs = dict(zip((job.name for job in job_list), self._jobs(job_list, "training")))
        numbers = {kind: runs[f"train {kind}"] for kind in kinds}
        for kind in kinds:
            if numbers[kind]["terminated"]:
                raise RuntimeError(f"training the {kind} network diverged: "
                                   f"{numbers[kind]['terminated']}")
        self._plot_training(numbers, self.path("figures", "training.png"))
        numbers["comparisons"], assessments = {}, []
        for name in COMPARISON_STEPS:
            seeded = SeededComparison.from_runs(
                name, cfg.seeds, [runs[f"{name} seed {s}"] for s in cfg.seeds], settings[name])
            self._save(seeded, name)
            numbers["comparisons"][name] = seeded.to_dict()
            assessments += seeded.assessments()
        numbers["assessments"] = [a.to_dict() for a in assessments]
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
        """The findings on the two trained networks, with bootstrap intervals."""
        s = self.config.settings()
        results, assessments = jobs.analyse_pair(
            self.model("residual"), self.model("plain"),
            self.test_sample(s["analysis_examples"]),
            lesion_plain=self.model(self.config.lesion_plain), seed=self.config.seed,
            draws=s["lesion_draws"], path_samples=s["path_samples"], say=self.say)
        numbers = {}
        for name, result in results.items():
            self._save(result, name)
            numbers[name] = result.to_dict()
        numbers["assessments"] = [a.to_dict() for a in assessments]
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
                                   steps=s["vis_steps"], seed=self.config.seed, progress_bar=False,
                                   path=self.path("figures", f"refinement_{kind}.png"))
            views[kind] = {"same_filter": view.mean_same_filter_similarity,
                           "other_filters": view.other_filter_similarity,
                           "blocks": list(view.blocks)}
        numbers["refinement_view"] = views
        return numbers

    def step_export(self):
        from keras_resnet_lab.data import dataset_preprocessing, write_preprocessing
        from keras_resnet_lab.export import export_model

        res = self.model("residual")
        sample = self.test_sample(8)[0]
        # What both networks were trained on (jobs.data): recorded in the manifests, and
        # beside each model.keras for a later `keras-resnet-lab export` of it.
        preprocessing = dataset_preprocessing(self.config.dataset, self.config.image_size)
        for kind in self.config.networks():
            if os.path.isdir(os.path.join(self.out, "train", kind)):
                write_preprocessing(os.path.join(self.out, "train", kind), preprocessing)
        manifests = export_model(res, os.path.join(self.out, "export"), overwrite=True,
                                 sample=sample, preprocessing=preprocessing)
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
        force: start over in a folder that already holds results (of an earlier lab run).
        progress: callable receiving one line per event (None: silent).

    Raises:
        FileExistsError: ``config.out`` holds results and neither ``resume`` nor ``force``,
            or it holds files this project did not write.

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
            for kind in ("residual", "plain", "lesion_plain"):
                remove_folder_atomically(os.path.join(out, "train", kind))
        return Lab(config, progress).run(resume=resume)
