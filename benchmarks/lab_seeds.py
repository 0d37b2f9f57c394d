"""Stable verdicts: the default lab run with several ``--seed`` values, side by side.

Runs ``keras-resnet-lab lab --seed S --out OUT/seed_S`` for each seed (a fresh process each,
as a user would), then reads every run's ``summary.json`` and writes:

- ``lab_seeds.json``: the command, per seed the tally (held / not held / inconclusive), the
  run's wall time and every finding's verdict and estimate; per finding whether its verdict is
  the same for every seed (``stable``), and the list of findings whose verdict changed;
- ``lab_seeds.png``: finding x seed, coloured by verdict, annotated with the estimate.

A finished seed (its ``summary.json`` present) is not run again: an interrupted script resumes.

    python benchmarks/lab_seeds.py --out benchmarks/results/lab_seeds          # ~30 min
    python benchmarks/lab_seeds.py --quick --out /tmp/lab_seeds                # ~9 min
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results",
                                                      "lab_seeds"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="the --seed of each lab run (default 0 1 2)")
    parser.add_argument("--quick", action="store_true", help="run the labs with --quick")
    parser.add_argument("--lab-args", nargs=argparse.REMAINDER, default=[],
                        help="further arguments for every lab run (e.g. --processes 2)")
    args = parser.parse_args(argv)
    if len(set(args.seeds)) < 2 or min(args.seeds) < 0:
        parser.error(f"--seeds: at least two distinct seeds >= 0, got {args.seeds}")
    return args


def lab_command(seed, out, quick, extra):
    """The lab's command line for one seed (``python -m keras_resnet_lab_cli`` is the
    ``keras-resnet-lab`` console script)."""
    return [sys.executable, "-m", "keras_resnet_lab_cli", "lab", "--seed", str(seed),
            "--out", out, *(["--quick"] if quick else []), *extra]


def run_lab(seed, folder, args):
    """Run (or resume) the lab of one seed; its wall time in seconds (None when reused)."""
    summary = os.path.join(folder, "summary.json")
    if os.path.exists(summary):
        return None
    command = lab_command(seed, folder, args.quick, args.lab_args)
    if os.path.isdir(folder):
        command.append("--resume")
    print(f"seed {seed}: {' '.join(command[1:])}", flush=True)
    started = time.time()
    subprocess.run(command, check=True, cwd=ROOT)
    return round(time.time() - started, 1)


def collect(args, seconds):
    """The payload of ``lab_seeds.json`` from the runs' ``summary.json`` files."""
    runs, verdicts = {}, {}
    for seed in args.seeds:
        with open(os.path.join(args.out, f"seed_{seed}", "summary.json"),
                  encoding="utf-8") as handle:
            summary = json.load(handle)
        findings = {}
        for key, entry in summary["findings"].items():
            first = next((c for c in entry["criteria"] if not c.get("precondition")),
                         entry["criteria"][0])
            findings[key] = {"verdict": entry["verdict"], "statistic": first["key"],
                             "estimate": first["estimate"], "interval": first["interval"],
                             "unit": first.get("unit")}
            verdicts.setdefault(key, []).append(entry["verdict"])
        runs[str(seed)] = {"tally": summary["tally"], "seconds": seconds.get(seed),
                           "findings": findings}
    stable = {key: len(set(v)) == 1 for key, v in verdicts.items()}
    return {"benchmark": "lab_seeds",
            "command": " ".join(["keras-resnet-lab", *lab_command("SEED", "OUT", args.quick,
                                                                   args.lab_args)[3:]]),
            "seeds": args.seeds, "quick": bool(args.quick), "runs": runs,
            "stable": stable, "all_stable": all(stable.values()),
            "changed": sorted(k for k, s in stable.items() if not s)}


def plot(payload, path):
    """finding x seed, coloured by verdict, annotated with the first statistic's estimate."""
    from findings_atlas import verdict_grid

    from keras_resnet_lab.findings import FINDINGS, format_value

    seeds = [str(s) for s in payload["seeds"]]
    keys = [k for k in FINDINGS if k in payload["stable"]]
    cells = []
    for key in keys:
        row = []
        for seed in seeds:
            entry = payload["runs"][seed]["findings"][key]
            row.append((entry["verdict"], "n/a" if entry["estimate"] is None else
                        format_value(entry["estimate"], entry["unit"]).replace(" points", "")))
        cells.append(row)
    return verdict_grid(
        cells, [k + ("" if payload["stable"][k] else "  (changed)") for k in keys],
        [f"--seed {s}\n{_tally(payload['runs'][s]['tally'])}" for s in seeds], path,
        "Lab verdicts per --seed (estimate of each finding's first statistic)",
        column_width=1.4, rotation=0)


def _tally(tally):
    from keras_resnet_lab.findings import VERDICTS

    return "/".join(str(tally.get(v, 0)) for v in VERDICTS)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    seconds = {}
    for seed in args.seeds:
        seconds[seed] = run_lab(seed, os.path.join(args.out, f"seed_{seed}"), args)
    payload = collect(args, seconds)
    from keras_resnet_lab.atomic import atomic_write_json

    atomic_write_json(payload, os.path.join(args.out, "lab_seeds.json"))
    plot(payload, os.path.join(args.out, "lab_seeds.png"))
    for seed in args.seeds:
        run = payload["runs"][str(seed)]
        print(f"--seed {seed}: held/not held/inconclusive {_tally(run['tally'])}"
              + (f" in {run['seconds']:.0f} s" if run["seconds"] else ""))
    print("every verdict the same for every seed" if payload["all_stable"] else
          f"verdicts that changed with the seed: {', '.join(payload['changed'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
