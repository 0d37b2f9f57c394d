"""The findings atlas: every finding of the registry measured across depth, training recipe and
seeds, to say under which conditions each one shows (what no paper and no library gives).

For each depth (default 20, 56, 110) and recipe (He et al.'s SGD with weight decay; Adam
without weight decay) and each seed (default 0, 1, 2), a CIFAR ResNet and its plain twin are
trained on the embedded 16x16 digits (12 epochs) and every finding on a trained network is
measured on them (``keras_resnet_lab.lab.jobs.measure_networks``, on 160 test examples,
10 lesion draws per k and 32 path samples per length: the atlas's intervals are over the
seeds, and these keep the deepest networks' analyses within minutes). Per condition, each
statistic is the mean over the seeds with a t interval over the seeds, judged by the
registry's rule (``keras_resnet_lab.findings``). He et al.'s degradation compares each depth
with the shallowest one, per recipe and seed. Veit et al.'s lesion compares each ResNet, as
the lab does, with a plain network that trains: the plain twin of depth
``LESION_PLAIN_DEPTH`` (20; the shallowest depth when 20 is not measured), same recipe and
seed, as Veit et al. compared ResNet-110 with the shallower VGG-15. The findings that train
their own small networks are measured once, in their own settings, over the same seeds.

Writes ``atlas.json`` (every condition, per-seed statistics and the verdicts) and
``atlas.png`` (finding x condition, coloured by verdict, annotated with the estimate).
Each (condition, seed) is cached in ``runs/`` as it finishes: an interrupted atlas resumes.

    python benchmarks/findings_atlas.py --out benchmarks/results/findings_atlas   # ~1.5 h
    python benchmarks/findings_atlas.py --quick --out /tmp/atlas                 # ~2 min
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FULL = dict(depths=(20, 56, 110), recipes=("sgd", "adam"), seeds=(0, 1, 2), image_size=16,
            epochs=12, examples=160, draws=10, path_samples=32, smoke=False)
QUICK = dict(depths=(8, 14), recipes=("sgd", "adam"), seeds=(0, 1, 2), image_size=8,
             epochs=2, examples=120, draws=5, path_samples=8, smoke=True)
RECIPE_NAMES = {"sgd": "SGD", "adam": "Adam"}
#: The findings measured on the trained networks (the others train their own).
OWN_SETTINGS = "own settings"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="depths 8 and 14 on 8x8 digits, 2 epochs, smoke settings of the "
                             "seeded experiments (a test of the machinery, not of the papers)")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results",
                                                      "findings_atlas"))
    parser.add_argument("--depths", type=int, nargs="+", default=None)
    parser.add_argument("--recipes", nargs="+", choices=("sgd", "adam"), default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--processes", type=int, default=None,
                        help="worker processes (default: up to 2)")
    parser.add_argument("--no-comparisons", dest="comparisons", action="store_false",
                        help="skip the findings that train their own networks")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: write atlas.json and atlas.png from what runs/ "
                             "holds (conditions without every seed are listed as missing)")
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    for key in ("depths", "recipes", "seeds", "epochs"):
        if getattr(args, key) is not None:
            cfg[key] = tuple(getattr(args, key)) if key != "epochs" else args.epochs
    if min(cfg["depths"]) < 8 or any((d - 2) % 6 for d in cfg["depths"]):
        parser.error(f"--depths must be CIFAR depths 6n+2, got {cfg['depths']}")
    if len(cfg["seeds"]) < 2:
        parser.error("--seeds: an interval over seeds needs at least 2")
    return args, cfg


def condition_name(depth, recipe):
    return f"depth {depth} {RECIPE_NAMES[recipe]}"


def aggregate(runs, cfg):
    """``{finding key: {condition: Assessment}}`` from the per-(condition, seed) runs."""
    from keras_resnet_lab.findings import assess, missing, over_seeds
    from keras_resnet_lab.lab.jobs import LESION_PLAIN_DEPTH

    atlas = {}
    shallow = min(cfg["depths"])
    reference = LESION_PLAIN_DEPTH if LESION_PLAIN_DEPTH in cfg["depths"] else shallow
    for depth in cfg["depths"]:
        for recipe in cfg["recipes"]:
            cond = condition_name(depth, recipe)
            if any((depth, recipe, s) not in runs for s in cfg["seeds"]):
                continue  # not (yet) measured for every seed: left out, listed as missing
            seeded = [runs[(depth, recipe, s)] for s in cfg["seeds"]]
            by_key = {}
            for run in seeded:
                for data in run["assessments"]:
                    for c in data["criteria"]:
                        by_key.setdefault(data["key"], {}).setdefault(c["key"], []).append(
                            c["estimate"])
            by_key["veit_lesion"].update(lesion_reference(runs, reference, recipe, cfg["seeds"]))
            for key, values in by_key.items():
                estimates = {c: over_seeds(v) for c, v in values.items()}
                notes = f"{cond}, {len(seeded)} seeds" + (
                    f"; plain network: plain-{reference}, same recipe and seeds"
                    if key == "veit_lesion" else "")
                atlas.setdefault(key, {})[cond] = assess(key, estimates, cfg["seeds"],
                                                         notes=notes)
            if depth != shallow and all((shallow, recipe, s) in runs for s in cfg["seeds"]):
                rises = {kind: [100 * (runs[(depth, recipe, s)]["train_error"][kind]
                                       - runs[(shallow, recipe, s)]["train_error"][kind])
                                for s in cfg["seeds"]] for kind in ("plain", "residual")}
                atlas.setdefault("he_degradation", {})[cond] = assess(
                    "he_degradation", {"plain_rise": over_seeds(rises["plain"]),
                                       "residual_rise": over_seeds(rises["residual"])},
                    cfg["seeds"], notes=f"depth {depth} against {shallow}, {recipe}")
            elif depth == shallow:
                atlas.setdefault("he_degradation", {})[cond] = assess(
                    "he_degradation", {"plain_rise": missing("the shallowest depth"),
                                       "residual_rise": missing("the shallowest depth")},
                    cfg["seeds"], notes="the reference depth")
    return atlas


def lesion_reference(runs, depth, recipe, seeds):
    """``{criterion: [estimate per seed]}`` of ``veit_lesion``'s plain network: the plain twin
    of ``depth`` under ``recipe`` (empty lists when that depth is not measured for every seed:
    the criteria are then missing and the cell cannot be judged held)."""
    values = {c: [] for c in ("plain_error", "plain_intact_error")}
    if any((depth, recipe, s) not in runs for s in seeds):
        return values
    for s in seeds:
        lesion = next(a for a in runs[(depth, recipe, s)]["assessments"]
                      if a["key"] == "veit_lesion")
        for c in lesion["criteria"]:
            if c["key"] in values:
                values[c["key"]].append(c["estimate"])
    return values


def main(argv=None):
    started = time.time()
    args, cfg = parse_args(argv)
    from keras_resnet_lab.analysis.comparisons import run_comparison
    from keras_resnet_lab.catalog import COMPARISONS
    from keras_resnet_lab.parallel import Job, run_jobs

    os.makedirs(os.path.join(args.out, "runs"), exist_ok=True)
    todo, runs = [], {}
    for depth in cfg["depths"]:
        for recipe in cfg["recipes"]:
            for seed in cfg["seeds"]:
                name = f"d{depth}_{recipe}_s{seed}"
                cache = os.path.join(args.out, "runs", f"{name}.json")
                if os.path.exists(cache):
                    with open(cache, encoding="utf-8") as f:
                        runs[(depth, recipe, seed)] = json.load(f)
                    continue
                todo.append((depth, recipe, seed, cache, Job(
                    "keras_resnet_lab.lab.jobs:measure_networks", dict(
                        out_dir=os.path.join(args.out, "runs", name), depth=depth,
                        image_size=cfg["image_size"], epochs=cfg["epochs"],
                        recipe_name=recipe, seed=seed, examples=cfg["examples"],
                        draws=cfg["draws"], path_samples=cfg["path_samples"],
                        result_file=cache), name)))
    # the shallowest first: an interrupted atlas holds every condition of the depths it reached
    todo.sort(key=lambda t: t[0])
    print(f"{len(runs)} (condition, seed) runs cached, {len(todo)} "
          + ("not measured (--report-only runs nothing)" if args.report_only else "to run"),
          flush=True)

    def done(name, count, total):
        print(f"  {name} done ({count}/{total}, {time.time() - started:.0f} s)", flush=True)

    if not args.report_only:
        results = run_jobs([t[4] for t in todo], processes=args.processes, progress=done)
        for (depth, recipe, seed, _, _), result in zip(todo, results):
            runs[(depth, recipe, seed)] = result  # each job wrote its cache as it finished
    atlas = aggregate(runs, cfg)
    columns = [condition_name(d, r) for d in cfg["depths"] for r in cfg["recipes"]]
    if args.comparisons:
        columns.append(OWN_SETTINGS)
        own = own_settings(args, cfg, run_comparison, COMPARISONS)
        for a in own:
            atlas.setdefault(a.key, {})[OWN_SETTINGS] = a
    missing = [f"d{d}_{r}_s{s}" for d in cfg["depths"] for r in cfg["recipes"]
               for s in cfg["seeds"] if (d, r, s) not in runs]
    payload = {"benchmark": "findings_atlas", "mode": "quick" if args.quick else "full",
               "config": cfg, "columns": columns, "missing": missing,
               "findings": {key: {cond: a.to_dict() for cond, a in by_cond.items()}
                            for key, by_cond in atlas.items()},
               "verdicts": {key: {cond: a.verdict for cond, a in by_cond.items()}
                            for key, by_cond in atlas.items()},
               "report_only": bool(args.report_only),
               "seconds": round(time.time() - started, 1)}
    from keras_resnet_lab.analysis.results import atomic_write_json

    atomic_write_json(payload, os.path.join(args.out, "atlas.json"))
    plot(atlas, columns, os.path.join(args.out, "atlas.png"),
         f"Findings atlas ({payload['mode']}): verdict per condition, 95% intervals over "
         f"seeds {', '.join(map(str, cfg['seeds']))}")
    markdown = atlas_markdown(atlas, columns, missing)
    from keras_resnet_lab.atomic import atomic_write_text

    atomic_write_text(markdown, os.path.join(args.out, "atlas.md"))
    print(markdown)
    if missing:
        print(f"not measured yet (resume to add them): {', '.join(missing)}")
    print(f"atlas in {args.out} ({payload['seconds']} s)")
    return 0


def own_settings(args, cfg, run_comparison, comparisons):
    """The findings that train their own networks, over the atlas's seeds (cached in
    ``runs/own_settings.json``; with ``--report-only`` only what that cache holds)."""
    from keras_resnet_lab.findings import from_dict

    cache = os.path.join(args.out, "runs", "own_settings.json")
    done = {}
    if os.path.exists(cache):
        with open(cache, encoding="utf-8") as f:
            done = json.load(f)
    for name in comparisons:
        if name in done or args.report_only:
            continue
        print(f"  {name} over seeds {cfg['seeds']} ...", flush=True)
        seeded = run_comparison(name, seeds=cfg["seeds"], smoke=cfg["smoke"],
                                progress_bar=False, processes=args.processes)
        done[name] = [a.to_dict() for a in seeded.assessments()]
        from keras_resnet_lab.atomic import atomic_write_json

        atomic_write_json(done, cache)
    return [from_dict(d) for name in comparisons for d in done.get(name, [])]


def _label(a):
    from keras_resnet_lab.findings import format_value

    c = next(c for c in a.finding.criteria if not c.precondition)
    return format_value(a.estimates[c.key].value, c.unit).replace(" points", "")


def measured(atlas, key, cond):
    """The Assessment of ``key`` at ``cond``, or None where it was not measured there (no
    assessment, or none of its estimates has an interval)."""
    a = atlas.get(key, {}).get(cond)
    if a is None or not any(e.has_interval for e in a.estimates.values()):
        return None
    return a


def table(atlas, columns):
    """The atlas as a Markdown table: verdict (estimate of the first criterion) per cell."""
    from keras_resnet_lab.findings import FINDINGS

    lines = ["| finding | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    for key in FINDINGS:
        cells = []
        for cond in columns:
            a = measured(atlas, key, cond)
            cells.append("n/a" if a is None else f"{a.verdict} ({_label(a)})")
        lines.append(f"| `{key}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def where_it_shows(atlas, columns):
    """One line per finding, generated from the verdicts: the conditions where it held, where
    it did not, and where the measurement could not decide (conditions where it was not
    measured are left out)."""
    from keras_resnet_lab.findings import FINDINGS, VERDICTS

    labels = dict(zip(VERDICTS, ("holds", "does not hold", "is inconclusive")))
    lines = []
    for key in FINDINGS:
        groups = {verdict: [] for verdict in VERDICTS}
        for cond in columns:
            a = measured(atlas, key, cond)
            if a is not None:
                groups[a.verdict].append(cond)
        parts = [f"{labels[verdict]} at {', '.join(conds)}"
                 for verdict, conds in groups.items() if conds]
        lines.append(f"- `{key}` " + ("; ".join(parts) if parts else "is not measured") + ".")
    return lines


def atlas_markdown(atlas, columns, missing=()):
    """``atlas.md``: the table and, per finding, where it shows (the README's atlas section)."""
    text = [table(atlas, columns), "", *where_it_shows(atlas, columns)]
    if missing:
        text += ["", f"Not measured yet (`findings_atlas.py` resumes them): {', '.join(missing)}."]
    return "\n".join(text) + "\n"


def plot(atlas, columns, path, title):
    """The heat map: one row per finding, one column per condition, coloured by verdict."""
    from keras_resnet_lab.findings import FINDINGS

    cells = []
    for key in FINDINGS:
        row = []
        for cond in columns:
            a = measured(atlas, key, cond)
            row.append((None, "n/a") if a is None else (a.verdict, _label(a)))
        cells.append(row)
    return verdict_grid(cells, list(FINDINGS), columns, path, title)


def verdict_grid(cells, rows, columns, path, title, column_width=1.3, rotation=30):
    """A finding x condition heat map: ``cells[i][j] = (verdict or None, label)`` coloured by
    the verdict (grey when None: not measured) and annotated with the label; also the figure
    of ``benchmarks/lab_seeds.py``. Returns ``path``."""
    import numpy as np
    from matplotlib.colors import ListedColormap

    from keras_resnet_lab.analysis.results import new_figure, save_figure
    from keras_resnet_lab.findings import VERDICTS

    colors = ["#1a7f37", "#b3261e", "#e0b23a", "#d9dde3"]  # held, not held, inconclusive, n/a
    grid = np.full((len(rows), len(columns)), len(VERDICTS))
    figure, (ax,) = new_figure(1, width=column_width * len(columns) + 3,
                               height=0.42 * len(rows) + 1.5)
    for i, row in enumerate(cells):
        for j, (verdict, label) in enumerate(row):
            if verdict is not None:
                grid[i, j] = VERDICTS.index(verdict)
            ax.text(j, i, label, ha="center", va="center", fontsize=7,
                    color="black" if verdict is not None else "#555")
    ax.imshow(grid, cmap=ListedColormap(colors), vmin=0, vmax=3, aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=rotation,
                  ha="right" if rotation else "center", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    shown = (*VERDICTS, "not measured") if (grid == len(VERDICTS)).any() else VERDICTS
    handles = [ax.scatter([], [], marker="s", s=80, color=c, label=v)
               for c, v in zip(colors, shown)]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set_title(title, fontsize=9)
    return save_figure(figure, path)


if __name__ == "__main__":
    sys.exit(main())
