"""The lab's report: each figure with a paragraph read from this run's numbers.

Every sentence below is computed from the results of the run (nothing is canned but the
connecting words), so the report tells what *this* run showed, including when a paper's
finding did not hold at this scale.
"""

import dataclasses
import os
import platform

import numpy as np

from keras_resnet_lab.lab.html import Figure, Section, render


def pct(value):
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def read_training(numbers, depth, epochs):
    res, plain = numbers["residual"], numbers["plain"]
    loss_r, loss_p = res["final_train_loss"], plain["final_train_loss"]
    ratio = _mean(plain["train_loss"]) / max(_mean(res["train_loss"]), 1e-12)
    text = (f"After {epochs} epochs the residual ResNet-{depth} reached "
            f"{pct(res['final_test_accuracy'])} test accuracy (final training loss "
            f"{loss_r:.3f}); its plain twin, the same layers without shortcuts, reached "
            f"{pct(plain['final_test_accuracy'])} (final training loss {loss_p:.3f}). ")
    slower = ratio > 1.1
    if slower:
        text += (f"The plain network optimizes more slowly: averaged over the run its training "
                 f"loss is {ratio:.1f} times the residual network's")
    else:
        text += (f"Both optimize at about the same pace (mean training loss ratio plain/residual "
                 f"{ratio:.2f})")
    if loss_p > 1.1 * loss_r and loss_p > 0.05:
        text += (", and it ends with a higher training loss: the degradation He et al. "
                 "(arXiv 1512.03385) found in deep plain networks.")
    else:
        gap = ("the difference is one of speed" if slower
               else "shortcuts are not yet needed to optimize")
        text += (f"; by the end both fit the training set, so at depth {depth} {gap}. He et al. "
                 "(arXiv 1512.03385) found that deeper plain networks end with a higher "
                 "training error (try --depth 56 or 110).")
    return text, slower


def read_lesion(lesion):
    single = lesion["single_error"]
    names = lesion["block_names"]
    down = lesion["downsampling"]
    intact, chance = lesion["intact_error"], lesion["chance_error"]
    worst = int(np.argmax(single))
    plain = lesion.get("plain") or {}
    plain_single = plain.get("single_error") or []
    text = (f"Deleting one block of the residual network (keeping its shortcut) moved its test "
            f"error from {pct(intact)} to {pct(_mean(single))} on average; the worst deletion "
            f"was {names[worst]} ({pct(single[worst])}). ")
    if any(down):
        d = _mean([e for e, is_down in zip(single, down) if is_down])
        o = _mean([e for e, is_down in zip(single, down) if not is_down])
        text += (f"Downsampling blocks cost more ({pct(d)} on average) than the others "
                 f"({pct(o)}). ")
    held = None
    if plain_single:
        mean_plain = _mean(plain_single)
        text += (f"Deleting one layer of the plain twin sent its error to {pct(mean_plain)} on "
                 f"average (chance is {pct(chance)}): without shortcuts every layer is on the "
                 "only path. ")
        held = mean_plain - plain["intact_error"] > 2 * (_mean(single) - intact)
    by_k = {r["k"]: float(np.mean(r["errors"])) for r in lesion["random_k"]}
    if by_k:
        ks = sorted(by_k)
        text += ("Deleting k random blocks raised the error gradually: " + ", ".join(
            f"k={k}: {pct(by_k[k])}" for k in ks[:: max(1, len(ks) // 4)]) + ". ")
    if lesion["reorder"]:
        taus = np.array([r["kendall_tau"] for r in lesion["reorder"]])
        errs = np.array([r["error"] for r in lesion["reorder"]])
        if len(taus) > 2 and np.std(taus) > 0:
            corr = float(np.corrcoef(taus, errs)[0, 1])
            text += (f"Reordering blocks: the correlation of error with Kendall tau (1 is the "
                     f"original order) is {corr:+.2f}"
                     + (", so error grows smoothly as the order moves away from the original."
                        if corr < 0 else ", so reordering did not cost more the further the "
                        "order moved at this scale."))
    return text, held


def read_paths(paths):
    n = paths["n_blocks"]
    lo, hi = paths["effective_range"]
    share = paths["effective_path_share"]
    decay = paths["decay_per_block"]
    held = paths["peak_length"] < n / 2
    text = (f"Unrolled, the {n} blocks form 2^{n} = {2 ** n:,} paths, C({n}, k) of length k. "
            f"Sampling which blocks pass gradient through their branch, the input-gradient "
            f"magnitude changes by a factor {decay:.2f} per extra branch on a path, so the "
            f"contribution of all paths of a length peaks at k = {paths['peak_length']} and "
            f"{100 * paths['effective_mass']:.0f}% of the gradient comes from paths of length "
            f"{lo} to {hi}: {100 * share:.2f}% of all paths. ")
    text += ("As Veit et al. (arXiv 1605.06431) found, training is carried by paths far "
             "shorter than the network." if held else
             "Here the contribution does not peak below half the depth, unlike Veit et al.")
    return text, held


def read_refinement(ref):
    cos = ref["cos_neg_grad"]
    ratio = ref["norm_ratio"]
    names = ref["block_names"]
    positive = sum(1 for c in cos if c > 0)
    drop = [None if v is None else v - ref["intact_loss"] for v in ref["drop_loss"]]
    valid = [(d, n) for d, n in zip(drop, names) if d is not None]
    text = (f"Each block's branch F_i(h_i) points along the negative loss gradient for "
            f"{positive} of {len(cos)} blocks (mean cosine {np.mean(cos):+.3f}): the blocks "
            f"take small descent steps on the loss, the iterative-refinement view of "
            f"Jastrzebski et al. (arXiv 1710.04773). The relative change ||F(h)||/||h|| is "
            f"{ratio[0]:.2f} at the first block and {np.mean(ratio[1:]):.2f} on average "
            "after it. ")
    if valid:
        worst = max(valid)
        text += (f"Dropping a single block raises the loss most at {worst[1]} "
                 f"(+{worst[0]:.3f}); the mean increase is {_mean([d for d, _ in valid]):.3f}.")
    held = np.mean(cos) > 0 and ratio[0] >= np.mean(ratio[1:])
    return text, bool(held)


def read_similarity(res, plain):
    text = (f"Linear CKA between consecutive block outputs of the same stage is "
            f"{res['within_stage']:.2f} in the residual network against "
            f"{plain['within_stage']:.2f} in the plain twin (across stage boundaries "
            f"{res['across_stages']:.2f} and {plain['across_stages']:.2f}): residual blocks "
            "refine their input more than they replace it.")
    return text, res["within_stage"] > plain["within_stage"]


def read_vis(vis):
    shares = vis["cam_digit_share"]
    area = vis["digit_area_share"]
    view = vis["refinement_view"]
    text = ("Grad-CAM at the last block of each stage puts "
            + ", ".join(f"{pct(v)} ({k})" for k, v in shares.items())
            + f" of its mass on the digit's box, which covers {pct(area)} of the image. "
            f"Maximizing the same filters at every block of stage 2 gives images whose "
            f"correlation between consecutive blocks is {view['residual']['same_filter']:.2f} "
            f"in the residual network and {view['plain']['same_filter']:.2f} in the plain "
            "twin: the residual blocks keep and refine one feature per channel (Chu et al., "
            "arXiv 1701.02362).")
    held = view["residual"]["same_filter"] > view["plain"]["same_filter"]
    return text, held


def read_export(export):
    parts = []
    for fmt, n in export.items():
        if isinstance(n, dict) and "passed" in n:
            parts.append(f"{fmt}: {n['outputs']} outputs, largest difference from Keras "
                         f"{n['worst_diff']:.1e} at {n['worst_output']}")
    return ("The residual network was exported with every block's output as a named output; "
            "each artifact was checked against Keras at export time (" + "; ".join(parts)
            + ").")


def read_estimation(est):
    measured = [i for i, m in enumerate(est["measured"]) if m]
    means = [abs(est["normalized_mean"][i]) for i in measured]
    stds = [est["normalized_std"][i] for i in measured]
    steps = []
    for stage in sorted({est["stages"][i] for i in measured}):
        values = [est["normalized_std"][i] for i in measured if est["stages"][i] == stage]
        steps.extend(b < a for a, b in zip(values, values[1:]))
    shrink = float(np.mean(steps)) if steps else None
    near_zero = max(m / s for m, s in zip(means, stds) if s > 0) if stds else None
    text = (f"Greff et al. (arXiv 1612.07771) read the blocks of a stage as unrolled iterative "
            f"estimation of the same features: the estimation error h_i - h_end of block i "
            f"against the stage's last output should have a mean near 0 and a spread that "
            f"shrinks with depth. Here, over {len(measured)} blocks (the stages' last blocks "
            f"are 0 by definition), |mean| is at most {max(means):.2f} RMS(h_end) and at most "
            f"{near_zero:.2f} of the standard deviation, which falls from "
            f"{max(stds):.2f} to {min(stds):.2f} RMS(h_end); it shrinks at "
            f"{'n/a' if shrink is None else pct(shrink)} of the steps inside a stage. ")
    held = shrink is not None and shrink >= 0.75 and near_zero <= 0.5
    if not held:
        text += ("The finding does not fully hold here: in post-activation blocks each block "
                 "adds a non-negative ReLU output, which biases the error (a pre-activation "
                 "ResNet shows it; see benchmarks/estimation_greff.py).")
    return text, bool(held)


def read_filters(flt):
    text = (f"Chu et al. (arXiv 1701.02362) saw channel j keep its look from block to block of "
            f"a ResNet. As a number: the activations of channel j at consecutive blocks "
            f"correlate {flt['same_channel_mean']:.2f} on average against "
            f"{flt['random_pair_mean']:.2f} for random channel pairs (score "
            f"{flt['score']:+.2f}); in the plain twin the score is {flt['twin_score']:+.2f}.")
    return text, bool(flt["score"] > flt["twin_score"] and flt["score"] > 0)


def read_hessian(hes):
    def cond(n):
        return [v for v in hes["condition"][str(n)] if v is not None]

    c1, c2 = cond(1), cond(2)
    zero3 = max(hes["max_abs_eigenvalue"]["3"]) if "3" in hes["max_abs_eigenvalue"] else None
    depth = hes["depths"]["1"][-1]
    spread2 = (max(c2) - min(c2)) / min(c2) if c2 else None
    text = (f"Li et al. (arXiv 1611.01186): the Hessian of a linear network's loss at zero "
            f"initialization, up to {depth} layers. With shortcuts over 2 layers its condition "
            f"number is {c2[0]:.3g} at every depth (relative spread {spread2:.1e}); over single "
            f"layers it goes from {c1[0]:.3g} to {c1[-1]:.3g}; over 3 layers the Hessian "
            f"vanishes (largest |eigenvalue| {zero3:.1e}): zero is a flat, high-order saddle. ")
    held = spread2 < 1e-6 and c1[-1] > 10 * c2[-1] and zero3 < 1e-9
    text += ("Shortcuts of depth 2 are the ones that keep the start well conditioned at any "
             "depth." if held else "Not all three cases show here.")
    return text, bool(held)


def read_multires(mr):
    cfg = {c["branches"]: (c, acc) for c, acc in zip(mr["configs"], mr["mean_accuracy"])}
    (one, acc1), (four, acc4) = cfg[1], cfg[4]
    text = (f"Abdi & Nahavandi (arXiv 1609.05672): {four['n_blocks']} blocks of 4 residual "
            f"branches against {one['n_blocks']} ordinary blocks, {one['params']:,} parameters "
            f"each, trained alike on the 8x8 digits for {mr['epochs']} epochs: test accuracy "
            f"{pct(acc4)} against {pct(acc1)}. The multi-residual net has "
            f"{four['paths']:,} paths against {one['paths']:,}. ")
    held = four["params"] == one["params"] and acc4 >= acc1 - 0.02
    text += ("Fewer, wider blocks are at least as accurate (within 2 points), as the paper "
             "found." if held else "Here the deeper network is clearly more accurate.")
    return text, bool(held)


#: The training comparisons of the findings step: (name, section title, figure caption).
COMPARISON_SECTIONS = (
    ("highway", "Highway networks at depth", "training loss and error of plain and highway "
     "nets against depth; gates of the deepest"),
    ("scaling", "Scaling the residual branch", "||h_i|| / ||h_0|| at initialization and the "
     "training loss, per branch scale s"),
    ("sharing", "Weight-shared residual stacks", "growth through the steps, training loss and "
     "test accuracy: shared, per-step and no batch-norm sharing"),
    ("looks_linear", "A deep plain net from the looks-linear initialization",
     "training loss and accuracy, looks-linear against He initialization"),
)


def read_comparison(result):
    """The paragraph and verdict a training comparison wrote about itself (its ``to_dict()``):
    the paper's finding, what this run measured, and whether every criterion held (the
    description names any that failed)."""
    return f"{result['finding']} {result['description']}", bool(result["finding_held"])


def write_report(lab):
    """Write ``report.html``, ``summary.json`` and ``README.md`` into the lab's folder."""
    from keras_resnet_lab import __version__
    from keras_resnet_lab.atomic import atomic_path, atomic_write_json

    cfg, numbers = lab.config, lab.numbers
    fig = lambda name: lab.path("figures", name)  # noqa: E731
    train, analysis, vis, export = (numbers[k] for k in ("train", "analysis", "vis", "export"))
    sections, findings = [], {}

    text, held = read_training(train, cfg.depth, cfg.epochs)
    findings["plain_trains_slower"] = held
    sections.append(Section("Plain versus residual training", text,
                             [Figure(fig("training.png"), "training loss and test accuracy")]))
    text, held = read_lesion(analysis["lesion"])
    findings["lesion_plain_fragile"] = held
    sections.append(Section("An ensemble: deleting and reordering blocks", text,
                            [Figure(fig("lesion.png"), "single deletions, k deletions, "
                                    "reorderings (residual and plain)")], held))
    text, held = read_paths(analysis["paths"])
    findings["short_paths_carry_gradient"] = held
    sections.append(Section("Gradient per path length", text,
                            [Figure(fig("paths.png"), "path counts, gradient magnitude and "
                                    "contribution per path length")], held))
    text, held = read_refinement(analysis["refinement"])
    findings["iterative_refinement"] = held
    sim_text, sim_held = read_similarity(analysis["similarity_residual"],
                                         analysis["similarity_plain"])
    findings["blocks_refine_not_replace"] = sim_held
    sections.append(Section("Iterative refinement", text + " " + sim_text,
                            [Figure(fig("refinement.png"), "cosine with the negative "
                                    "gradient, relative change, drop/repeat cost"),
                             Figure(fig("similarity_residual.png"), "block CKA, residual"),
                             Figure(fig("similarity_plain.png"), "block CKA, plain twin")],
                            held and sim_held))
    text, held = read_vis(vis)
    findings["filters_refined_across_blocks"] = held
    sections.append(Section("What the blocks look at", text,
                            [Figure(fig(f"gradcam_{b}.png"), f"Grad-CAM at {b}")
                             for b in vis["cam_blocks"]]
                            + [Figure(fig("refinement_residual.png"),
                                      "one filter across stage 2, residual"),
                               Figure(fig("refinement_plain.png"),
                                      "one filter across stage 2, plain twin")], held))
    more = numbers["findings"]
    for key_name, title, reader, figure, caption in (
            ("estimation", "Unrolled iterative estimation", read_estimation,
             "estimation.png", "estimation error h_i - h_end per block: mean and spread"),
            ("filters", "Filter refinement as a number", read_filters, "filters.png",
             "channel j at consecutive blocks against random channel pairs"),
            ("hessian", "The Hessian at zero initialization", read_hessian, "hessian.png",
             "condition number and spectrum per depth, shortcuts of 1-3 layers"),
            ("multires", "Multi-residual at equal parameters", read_multires,
             "multires.png", "k = 1 against k = 4 branches, same parameter count")):
        text, held = reader(more[key_name])
        findings[key_name] = held
        sections.append(Section(title, text, [Figure(fig(figure), caption)], held))
    for key_name, title, caption in COMPARISON_SECTIONS:
        text, held = read_comparison(more[key_name])
        findings[key_name] = held
        sections.append(Section(title, text, [Figure(fig(f"{key_name}.png"), caption)], held))
    sections.append(Section("Shipping it", read_export(export)))
    sections = [dataclasses.replace(s, title=f"{i}. {s.title}")
                for i, s in enumerate(sections, start=1)]

    res, plain = train["residual"], train["plain"]
    lesion = analysis["lesion"]
    paths = analysis["paths"]
    key = [
        ("test accuracy, residual", pct(res["final_test_accuracy"])),
        ("test accuracy, plain twin", pct(plain["final_test_accuracy"])),
        ("mean error after deleting one block, residual", pct(_mean(lesion["single_error"]))),
        ("mean error after deleting one layer, plain", pct(_mean(
            (lesion.get("plain") or {}).get("single_error") or [None]))),
        ("effective path lengths", f"{paths['effective_range'][0]}-"
                                   f"{paths['effective_range'][1]} of {paths['n_blocks']}"),
        ("gradient factor per extra branch", f"{paths['decay_per_block']:.2f}"),
        ("mean cos(F, -grad)", f"{np.mean(analysis['refinement']['cos_neg_grad']):+.3f}"),
        ("CKA within stage, residual / plain",
         f"{analysis['similarity_residual']['within_stage']:.2f} / "
         f"{analysis['similarity_plain']['within_stage']:.2f}"),
        ("export parity (max abs diff)", ", ".join(
            f"{k} {v['worst_diff']:.1e}" for k, v in export.items()
            if isinstance(v, dict) and "worst_diff" in v)),
        ("wall time of the steps (s)", ", ".join(
            f"{k} {numbers[k]['seconds']:.0f}"
            for k in ("train", "analysis", "findings", "vis", "export"))),
    ]
    subtitle = (f"ResNet-{cfg.depth} and its plain twin on {cfg.dataset}"
                f"{' (quick run)' if cfg.quick else ''}: {cfg.epochs} epochs, "
                f"{cfg.image_size}x{cfg.image_size} images")
    footer = (f"keras_resnet_lab {__version__}, Python {platform.python_version()}; "
              f"keras-resnet-lab lab --dataset {cfg.dataset} --depth {cfg.depth}"
              f"{' --quick' if cfg.quick else ''}")
    render(lab.path("report.html"), "Why skip connections work: a lab report", subtitle,
           sections, key, footer)
    summary = {"config": {"dataset": cfg.dataset, "depth": cfg.depth, "quick": cfg.quick,
                          "epochs": cfg.epochs, "image_size": cfg.image_size,
                          "seed": cfg.seed},
               "findings": findings, "key_figures": dict(key),
               "steps": {k: v for k, v in numbers.items() if k != "report"}}
    atomic_write_json(_jsonable(summary), lab.path("summary.json"))
    with atomic_path(lab.path("README.md")) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(FOLDER_README.format(subtitle=subtitle))
    return {"findings": findings, "report": os.path.basename(lab.path("report.html"))}


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


FOLDER_README = """# keras-resnet-lab lab output

{subtitle}

- `report.html`: the report (self-contained: open it in any browser, offline).
- `summary.json`: every number of the run, the findings (true/false) and the key figures.
- `train/residual/`, `train/plain/`: `model.keras`, `history.json`, `curves.png` of each network.
- `analysis/`: `lesion.json`, `paths.json`, `refinement.json`, `similarity_*.json`, and the
  further findings `estimation.json`, `filters.json`, `hessian.json`, `multires.json`,
  `highway.json`, `scaling.json`, `sharing.json`, `looks_linear.json`.
- `figures/`: every figure of the report as PNG.
- `export/savedmodel/`, `export/onnx/`: the residual network with every block's output, each
  with its `manifest.json` (names, shapes, parity measured at export).
- `steps/`: one JSON per finished step; `keras-resnet-lab lab --resume` skips those steps.
"""
