"""How fast the command line answers what needs no TensorFlow: ``--help``, ``--version``, an
argument error, against a bare Python start and ``import tensorflow`` in the same script.

Each command runs as a fresh process (the console script's module, as ``keras-resnet-lab``
runs it), alternately with the references, ``--rounds`` times; the JSON holds every time,
the medians, the ratios ``import tensorflow`` / command (how many times faster than loading
TensorFlow) and whether each answer stayed under 1.5 s; the PNG shows the medians.

Usage::

    python benchmarks/cli_bench.py [--quick] [--rounds N] --out DIR
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = "import sys, keras_resnet_lab_cli; sys.exit(keras_resnet_lab_cli.main(sys.argv[1:]))"
#: name -> (python arguments, expected exit code)
COMMANDS = {
    "python (no import)": (["-c", "pass"], 0),
    "import tensorflow": (["-c", "import tensorflow"], 0),
    "--help": (["-c", LAUNCH, "--help"], 0),
    "--version": (["-c", LAUNCH, "--version"], 0),
    "train --help": (["-c", LAUNCH, "train", "--help"], 0),
    "argument error": (["-c", LAUNCH, "train", "--out", "x", "--drop-path", "1.5"], 2),
}
#: What the issue asks of the answers that need no TensorFlow, on a 2-core machine.
LIMIT_S = 1.5


def _runner(args, code):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)

    def run():
        proc = subprocess.run([sys.executable, *args], env=env, capture_output=True,
                              cwd=ROOT)
        if proc.returncode != code:
            raise RuntimeError(f"{args} exited {proc.returncode}: {proc.stderr[-500:]}")

    return run


def main(argv=None):
    args = _bench.make_parser(__doc__.splitlines()[0], "cli_bench").parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 9)
    started = time.time()
    candidates = {name: _runner(*spec) for name, spec in COMMANDS.items()}
    times = _bench.time_alternating(candidates, rounds=rounds, warmup=1,
                                    progress=None if args.quick else "cli")
    reference = times["import tensorflow"]
    results = {name: dict(_bench.summary(t), ratio_vs_import_tensorflow=_bench.ratio(
        reference, t)) for name, t in times.items()}
    answers = [n for n in COMMANDS if n not in ("python (no import)", "import tensorflow")]
    verdict = {n: results[n]["median_s"] < LIMIT_S for n in answers}
    payload = {"benchmark": "cli_bench", "environment": _bench.environment(),
               "rounds": rounds, "limit_s": LIMIT_S, "commands": {n: " ".join(COMMANDS[n][0])
                                                                  for n in COMMANDS},
               "results": results, "raw_s": times, "under_limit": verdict,
               "seconds": round(time.time() - started, 1)}
    os.makedirs(args.out, exist_ok=True)
    _bench.write_json(payload, os.path.join(args.out, "cli_bench.json"))
    _plot(results, os.path.join(args.out, "cli_bench.png"))
    for name, r in results.items():
        print(f"{name:20s} median {r['median_s']:.3f} s  ({r['ratio_vs_import_tensorflow']:.1f}x "
              "faster than import tensorflow)")
    print(f"under {LIMIT_S} s: {all(verdict.values())}; results in {args.out}")
    return 0


def _plot(results, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3.5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    names = list(results)
    ax.barh(names, [results[n]["median_s"] for n in names], color="tab:blue")
    ax.axvline(LIMIT_S, color="tab:red", ls="--", label=f"{LIMIT_S} s")
    ax.set(xlabel="seconds (median of fresh processes)", title="keras-resnet-lab start-up")
    ax.invert_yaxis()
    ax.legend()
    _bench._atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110))


if __name__ == "__main__":
    sys.exit(main())
