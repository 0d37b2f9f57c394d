"""The lab's report: every finding with its rule, estimate, interval and verdict, and the
figures, read from this run's numbers.

Each finding's paragraph is generated from its registry entry and its measured estimate
(:meth:`keras_resnet_lab.findings.Assessment.describe`); the sentences around it state this
run's numbers and nothing the numbers do not show. ``summary.json`` holds, per finding: the
claim, each statistic with its estimate, interval, threshold and verdict, the seeds and the
paper's number.
"""

import dataclasses
import os
import platform

import numpy as np

from keras_resnet_lab.findings import VERDICTS, format_value, from_dict, tally
from keras_resnet_lab.lab.html import Figure, Section, render


def pct(value):
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _finite(values):
    return [v for v in values if v is not None and np.isfinite(v)]


# -- sentences of this run's numbers (no verdicts: those come from the assessments) ----------

def context_training(numbers, cfg):
    res, plain = numbers["train"]["residual"], numbers["train"]["plain"]
    return (f"After {cfg.epochs} epochs ({cfg.recipe} recipe, {cfg.image_size}x"
            f"{cfg.image_size} {cfg.dataset}) ResNet-{cfg.depth} reached "
            f"{pct(res['final_test_accuracy'])} test accuracy (final training loss "
            f"{res['final_train_loss']:.3f}) and its plain twin, the same layers without "
            f"shortcuts, {pct(plain['final_test_accuracy'])} (final training loss "
            f"{plain['final_train_loss']:.3f}). He et al.'s finding is a comparison of depths, "
            "so it is measured on its own nets below (the depth comparison over three seeds)."
            + _lesion_plain_training(numbers, cfg))


def _lesion_plain_training(numbers, cfg):
    if cfg.lesion_plain == "plain":
        return ""
    net = numbers["train"]["lesion_plain"]
    return (f" The lesion study compares the ResNet with a plain network that trains, as Veit "
            f"et al. compared ResNet-110 with the shallower VGG-15: plain-"
            f"{cfg.networks()['lesion_plain']}, trained alike, reached "
            f"{pct(net['final_test_accuracy'])} test accuracy.")


def context_lesion(numbers, cfg):
    lesion = numbers["analysis"]["lesion"]
    single = lesion["single_error"]
    down = lesion["downsampling"]
    parts = [f"Intact test error {pct(lesion['intact_error'])}; with one block deleted "
             f"(shortcut kept) the error ranges from {pct(min(single))} to {pct(max(single))}"]
    if any(down):
        d = _finite([e for e, is_down in zip(single, down) if is_down])
        parts.append(f"mean {pct(float(np.mean(d)))} at the downsampling blocks")
    plain = lesion.get("plain") or {}
    if plain.get("single_error"):
        parts.append(f"the plain network it is compared with ('{plain['model_name']}') has "
                     f"intact error {pct(plain['intact_error'])} and "
                     f"{pct(float(np.median(plain['single_error'])))} (median) with one layer "
                     "deleted")
    text = "; ".join(parts) + ". "
    if lesion["random_k"]:
        curve = sorted((r["k"], r["mean_error"]) for r in lesion["random_k"])
        draws = len(lesion["random_k"][0]["errors"])
        text += (f"Mean error with k random blocks deleted ({draws} draws per k): "
                 + ", ".join(f"k={k}: {pct(e)}" for k, e in curve) + ". ")
    if lesion["reorder"]:
        text += (f"{len(lesion['reorder'])} random reorderings, Kendall tau from "
                 f"{min(r['kendall_tau'] for r in lesion['reorder']):.2f} to "
                 f"{max(r['kendall_tau'] for r in lesion['reorder']):.2f}.")
    return text


def context_paths(numbers, cfg):
    paths = numbers["analysis"]["paths"]
    n = paths["n_blocks"]
    lo, hi = paths["effective_range"]
    return (f"Unrolled, the {n} blocks form 2^{n} paths, C({n}, k) of length k. "
            f"{100 * paths['effective_mass']:.0f}% of the sampled gradient comes from paths of "
            f"length {lo} to {hi}, {100 * paths['effective_path_share']:.2f}% of all paths; "
            f"{paths['samples']} samples per length.")


def context_refinement(numbers, cfg):
    ref = numbers["analysis"]["refinement"]
    sim_r = numbers["analysis"]["similarity_residual"]
    sim_p = numbers["analysis"]["similarity_plain"]
    cos = ref["cos_neg_grad"]
    return (f"Per block, the mean cos(F_i(h_i), -dL/dh_i) ranges from {min(cos):+.3f} to "
            f"{max(cos):+.3f} ({sum(c > 0 for c in cos)} of {len(cos)} block means above 0); "
            f"||F(h)||/||h|| is {ref['norm_ratio'][0]:.2f} at the first block. Linear CKA of "
            f"consecutive blocks within a stage: {sim_r['within_stage']:.2f} in the ResNet, "
            f"{sim_p['within_stage']:.2f} in the plain twin.")


def context_estimation(numbers, cfg):
    est = numbers["analysis"]["estimation"]
    measured = [i for i, m in enumerate(est["measured"]) if m]
    stds = [est["normalized_std"][i] for i in measured]
    return (f"{len(measured)} blocks measured (a stage's last block is h_end itself); the "
            f"spread of h_i - h_end, in units of RMS(h_end), lies between {min(stds):.2f} and "
            f"{max(stds):.2f}.")


def context_filters(numbers, cfg):
    flt = numbers["analysis"]["filters"]
    view = numbers["vis"]["refinement_view"]
    return (f"Channel j at consecutive blocks correlates {flt['same_channel_mean']:.2f} on "
            f"average against {flt['random_pair_mean']:.2f} for random channel pairs. The "
            f"images maximizing the same filters at every block of stage 2 (figures) "
            f"correlate {view['residual']['same_filter']:.2f} between consecutive blocks in "
            f"the ResNet and {view['plain']['same_filter']:.2f} in the plain twin "
            f"(descriptive; the verdict is the activation statistic above).")


def context_vis(numbers, cfg):
    vis = numbers["vis"]
    return ("Grad-CAM at the last block of each stage puts "
            + ", ".join(f"{pct(v)} ({k})" for k, v in vis["cam_digit_share"].items())
            + f" of its mass on the digit's box, which covers {pct(vis['digit_area_share'])} "
            "of the image (descriptive: no finding is tested here).")


def context_export(numbers, cfg):
    parts = [f"{fmt}: {n['outputs']} outputs, largest difference from Keras "
             f"{n['worst_diff']:.1e} at {n['worst_output']}"
             for fmt, n in numbers["export"].items() if isinstance(n, dict) and "passed" in n]
    return ("The ResNet was exported with every block's output as a named output; each "
            "artifact was checked against Keras at export time (" + "; ".join(parts) + ").")


def context_comparison(name):
    def read(numbers, cfg):
        settings = numbers["train"]["comparisons"][name].get("settings") or {}
        shown = ", ".join(f"{k} {v}" for k, v in settings.items() if not isinstance(v, dict))
        return f"Settings: {shown}." if shown else ""

    return read


@dataclasses.dataclass(frozen=True)
class Part:
    """A section of the report: its findings (registry keys), figures and context."""

    title: str
    findings: tuple
    figures: tuple
    context: object


PARTS = (
    Part("Degradation with depth", ("he_degradation",),
         (("training.png", "training loss and test accuracy of the lab's two networks"),
          ("depth.png", "training error of plain and residual nets at two depths, per seed")),
         context_training),
    Part("An ensemble of paths: deleting and reordering blocks",
         ("veit_lesion", "veit_k_deletion", "veit_reorder"),
         (("lesion.png", "single deletions, k random deletions, reorderings"),), context_lesion),
    Part("Gradient per path length", ("veit_path_gradient",),
         (("paths.png", "path counts, gradient magnitude and contribution per length"),),
         context_paths),
    Part("Iterative refinement", ("jastrzebski_refinement", "jastrzebski_first_block",
                                  "kornblith_cka"),
         (("refinement.png", "cosine with the negative gradient, relative change"),
          ("similarity_residual.png", "block CKA, ResNet"),
          ("similarity_plain.png", "block CKA, plain twin")), context_refinement),
    Part("Unrolled iterative estimation", ("greff_estimation",),
         (("estimation.png", "estimation error h_i - h_end per block: mean and spread"),),
         context_estimation),
    Part("Filters refined across blocks", ("chu_filters",),
         (("filters.png", "channel j at consecutive blocks against random channel pairs"),
          ("refinement_residual.png", "the same filters maximized across stage 2, ResNet"),
          ("refinement_plain.png", "the same filters maximized across stage 2, plain twin")),
         context_filters),
    Part("What the blocks look at", (), (), context_vis),
    Part("Highway networks at depth", ("srivastava_depth", "srivastava_gates"),
         (("highway.png", "plain and highway nets against depth; gates of the deepest"),),
         context_comparison("highway")),
    Part("Multi-residual at equal parameters", ("abdi_multires",),
         (("multires.png", "k = 1 against k = 4 branches, same parameter count"),),
         context_comparison("multires")),
    Part("Scaling the residual branch", ("szegedy_scaling",),
         (("scaling.png", "||h_i||/||h_0|| at initialization and training, per scale s"),),
         context_comparison("scaling")),
    Part("Weight-shared residual stacks", ("jastrzebski_sharing",),
         (("sharing.png", "growth through the steps and test accuracy, shared or per-step "
                          "batch norm"),), context_comparison("sharing")),
    Part("Shattered gradients", ("balduzzi_shattering",),
         (("shattering.png", "lag-1 autocorrelation of the input gradient against depth"),),
         context_comparison("shattering")),
    Part("A deep plain net from the looks-linear initialization", ("balduzzi_looks_linear",),
         (("looks_linear.png", "training accuracy, looks-linear against He "
                               "initialization"),), context_comparison("looks_linear")),
    Part("The Hessian at zero initialization", ("li_hessian",),
         (("hessian.png", "condition number and spectrum per depth, shortcuts of 1-3 "
                          "layers"),), context_comparison("hessian")),
    Part("Shipping it", (), (), context_export),
)


def assessments(numbers):
    """Every assessment of the run, rebuilt from the steps' JSON: ``{key: Assessment}``."""
    found = {}
    for step in ("train", "analysis"):
        for data in numbers.get(step, {}).get("assessments", []):
            found[data["key"]] = from_dict(data)
    return found


def _headline(assessment):
    """The verdict with the statistic that decides it (the first criterion whose own verdict
    is the finding's: a not-held or inconclusive criterion, or the first when all held) and
    the rule it was judged by, so the row's verdict follows from the numbers beside it."""
    criteria = assessment.finding.criteria
    c = next((c for c in criteria if assessment.verdicts[c.key] == assessment.verdict),
             criteria[0])
    e = assessment.estimates[c.key]
    interval = (f" [{format_value(e.low, c.unit)}, {format_value(e.high, c.unit)}]"
                if e.has_interval else "")
    return (f"{assessment.verdict}: {c.key} {format_value(e.value, c.unit)}{interval} "
            f"(needs {c.comparison} {format_value(c.threshold, c.unit)})")


def plot_findings(found, path, title):
    """Every criterion's estimate and interval against its threshold, coloured by verdict:
    one row per criterion, each on its own scale (the threshold is the dashed line)."""
    from keras_resnet_lab.analysis.results import new_figure, save_figure

    colors = dict(zip(VERDICTS, ("#1a7f37", "#b3261e", "#b7791f")))
    rows = [(a, c) for a in found.values() for c in a.finding.criteria]
    figure, axes = new_figure(1, nrows=len(rows), width=7.5, height=0.42)
    for ax, (a, c) in zip(axes, rows):
        e = a.estimates[c.key]
        verdict = a.verdicts[c.key]
        if np.isfinite(e.value):
            err = None
            if e.has_interval:
                err = [[max(e.value - e.low, 0)], [max(e.high - e.value, 0)]]
            ax.errorbar([e.value], [0], xerr=err, fmt="o", color=colors[verdict], capsize=3)
        ax.axvline(c.threshold, color="gray", ls="--", lw=1)
        ax.set_yticks([])
        ax.tick_params(axis="x", labelsize=6)
        mark = "pre " if c.precondition else ""
        ax.set_ylabel(f"{a.key}\n{mark}{c.key} {c.comparison}", rotation=0, ha="right",
                      va="center", fontsize=6)
        ax.set_title(verdict, fontsize=6, loc="right", color=colors[verdict], pad=1)
    figure.suptitle(title, fontsize=9)
    return save_figure(figure, path)


def write_report(lab):
    """Write ``report.html``, ``summary.json``, ``figures/findings.png`` and ``README.md``."""
    from keras_resnet_lab import __version__
    from keras_resnet_lab.atomic import atomic_path, atomic_write_json

    cfg, numbers = lab.config, lab.numbers
    found = assessments(numbers)
    counts = tally(a.verdict for a in found.values())
    count_text = ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
    plot_findings(found, lab.path("figures", "findings.png"),
                  f"{len(found)} findings: {count_text} (95% intervals; dashed: threshold)")
    sections = [Section("The findings at a glance",
                        f"Each finding is judged by its registry rule (keras_resnet_lab."
                        f"findings): held when the 95% interval of its statistic clears the "
                        f"threshold, not held when it clears it on the wrong side, "
                        f"inconclusive otherwise. This run: {count_text}.",
                        [Figure(lab.path("figures", "findings.png"), "every criterion: "
                                "estimate, interval and threshold")],
                        [(a.finding.title, a.verdict) for a in found.values()])]
    for part in PARTS:
        texts = [part.context(numbers, cfg)]
        verdicts = []
        for key in part.findings:
            if key in found:
                texts.append(found[key].describe())
                verdicts.append((found[key].finding.title, found[key].verdict))
        sections.append(Section(part.title, " ".join(t for t in texts if t),
                                [Figure(lab.path("figures", name), caption)
                                 for name, caption in part.figures], verdicts))
    sections = [dataclasses.replace(s, title=f"{i}. {s.title}") if i else s
                for i, s in enumerate(sections)]
    key = [("findings", count_text)] + [(a.finding.title, _headline(a)) for a in found.values()]
    key.append(("wall time of the steps (s)", ", ".join(
        f"{k} {numbers[k]['seconds']:.0f}" for k in numbers if "seconds" in numbers[k])))
    subtitle = (f"ResNet-{cfg.depth} and its plain twin on {cfg.dataset}"
                f"{' (quick run)' if cfg.quick else ''}: {cfg.epochs} epochs, "
                f"{cfg.image_size}x{cfg.image_size} images, recipe {cfg.recipe}; seeded "
                f"experiments over seeds {', '.join(map(str, cfg.seeds))}")
    footer = (f"keras_resnet_lab {__version__}, Python {platform.python_version()}; "
              f"keras-resnet-lab lab --dataset {cfg.dataset} --depth {cfg.depth} --seed "
              f"{cfg.seed}{' --quick' if cfg.quick else ''}")
    render(lab.path("report.html"), "Why skip connections work: a lab report", subtitle,
           sections, key, footer)
    summary = {"config": {"dataset": cfg.dataset, "depth": cfg.depth, "quick": cfg.quick,
                          "epochs": cfg.epochs, "image_size": cfg.image_size,
                          "recipe": cfg.recipe, "seed": cfg.seed, "seeds": list(cfg.seeds)},
               "tally": counts,
               "findings": {k: a.to_dict() for k, a in found.items()},
               "key_figures": dict(key),
               "steps": {k: v for k, v in numbers.items() if k != "report"}}
    atomic_write_json(summary, lab.path("summary.json"))
    with atomic_path(lab.path("README.md")) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(FOLDER_README.format(subtitle=subtitle))
    return {"tally": counts, "verdicts": {k: a.verdict for k, a in found.items()},
            "report": os.path.basename(lab.path("report.html"))}


FOLDER_README = """# keras-resnet-lab lab output

{subtitle}

- `report.html`: the report (self-contained: open it in any browser, offline).
- `summary.json`: per finding its claim, statistics with estimate, 95% interval, threshold
  and verdict, the seeds and the paper's number; the tally; every number of the run.
- `train/residual/`, `train/plain/`: `model.keras`, `history.json`, `curves.png` of each network;
  `train/lesion_plain/` the same for the plain network the lesions are compared with, where the
  plain twin is deeper than one that trains.
- `analysis/`: one JSON per analysis of the two networks (`lesion`, `paths`, `refinement`,
  `estimation`, `filters`, `similarity_*`) and per seeded experiment (`depth`, `highway`,
  `multires`, `scaling`, `sharing`, `looks_linear`, `shattering`, `hessian`).
- `figures/`: every figure of the report as PNG; `findings.png` shows every criterion.
- `export/savedmodel/`, `export/onnx/`: the ResNet with every block's output, each with its
  `manifest.json` (names, shapes, parity measured at export).
- `steps/`: one JSON per finished step; `keras-resnet-lab lab --resume` skips those steps.
"""
