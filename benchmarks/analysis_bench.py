"""Analysis speed: cached vs naive lesion sweeps, batched vs per-sample path gradients.

1. The single-block lesion sweep of a CIFAR ResNet-110 (54 blocks): ``method="cached"`` runs
   each batch through the intact model once and every lesion only from the deleted block on;
   ``method="naive"`` builds and runs one full model per lesion. Target: cached <= 0.6x the
   naive time, identical numbers.
2. Veit et al.'s gradient per path length: ``batched=True`` draws many (example, path) samples
   in one pass with per-example masks; ``batched=False`` does one pass per sample. Target:
   batched >= 5x faster, the same estimates (same draws: equal up to float rounding).

Both pairs are timed alternately in this process after a warm-up (median of rounds). Writes
``analysis_bench.json`` and ``analysis_bench.png`` into --out.

Usage:
    python benchmarks/analysis_bench.py [--quick] --out DIR
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _bench  # noqa: E402
import numpy as np  # noqa: E402


def main(argv=None):
    args = _bench.make_parser(__doc__.splitlines()[0]).parse_args(argv)
    import keras

    from keras_resnet_lab.analysis import lesion_study, path_gradients
    from keras_resnet_lab.data import load_digits
    from keras_resnet_lab.models import blocks, cifar_resnet

    start = time.time()
    depth, size, examples, samples = (20, 16, 64, 4) if args.quick else (110, 32, 256, 8)
    rounds = args.rounds or (2 if args.quick else 3)
    (_, _), (x, y) = load_digits(image_size=size)
    data = (x[:examples], y[:examples])
    keras.utils.set_random_seed(0)
    model = cifar_resnet(depth, preact=True, input_shape=(size, size, 3))
    n_blocks = len(blocks(model))
    results = {}

    def lesion(method):
        def run():
            results[f"lesion_{method}"] = lesion_study(
                model, data, k_values=(), swap_counts=(), method=method, progress_bar=False,
                batch_size=examples)
        return run

    lesion_times = _bench.time_alternating(
        {"naive": lesion("naive"), "cached": lesion("cached")}, rounds=rounds, warmup=1,
        progress="lesion sweep")
    same_lesion = (results["lesion_naive"].single_error == results["lesion_cached"].single_error
                   and results["lesion_naive"].single_loss == results["lesion_cached"].single_loss)

    lengths = [0, n_blocks // 4, n_blocks // 2]

    def paths(batched):
        def run():
            results[f"paths_{batched}"] = path_gradients(
                model, data, samples_per_length=samples, lengths=lengths, batched=batched,
                progress_bar=False)
        return run

    path_times = _bench.time_alternating(
        {"per_sample": paths(False), "batched": paths(True)}, rounds=rounds, warmup=1,
        progress="path gradients")
    per_sample = np.asarray(results["paths_False"].mean_norm)
    batched = np.asarray(results["paths_True"].mean_norm)
    path_diff = float(np.max(np.abs(per_sample - batched) / np.maximum(np.abs(per_sample),
                                                                         1e-30)))
    lesion_ratio = _bench.ratio(lesion_times["naive"], lesion_times["cached"])  # naive/cached
    path_speedup = _bench.ratio(path_times["per_sample"], path_times["batched"])
    result = _bench.BenchResult(
        name="analysis_bench", environment=_bench.environment(),
        settings={"model": model.name, "blocks": n_blocks, "image_size": size,
                  "examples": examples, "samples_per_length": samples, "lengths": lengths,
                  "rounds": rounds, "quick": args.quick},
        measurements={
            "lesion_seconds": {k: _bench.summary(v) | {"raw": v}
                               for k, v in lesion_times.items()},
            "paths_seconds": {k: _bench.summary(v) | {"raw": v} for k, v in path_times.items()},
            "lesion_numbers_identical": bool(same_lesion),
            "path_estimates_max_relative_difference": path_diff,
            "cached_over_naive_time": 1.0 / lesion_ratio,
            "targets": {"cached_over_naive_time_at_most": 0.6, "batched_speedup_at_least": 5.0},
        },
        ratios={"lesion sweep: naive time / cached time": lesion_ratio,
                "path gradients: per-sample time / batched time": path_speedup},
        notes=[f"cached lesion sweep takes {1.0 / lesion_ratio:.2f}x the naive time "
               f"(target <= 0.6), numbers identical: {same_lesion}",
               f"batched path gradients {path_speedup:.1f}x faster (target >= 5), largest "
               f"relative difference of the estimates {path_diff:.1e}"],
        wall_s=time.time() - start)
    os.makedirs(args.out, exist_ok=True)
    result.to_json(os.path.join(args.out, "analysis_bench.json"))
    result.plot(os.path.join(args.out, "analysis_bench.png"),
                title=f"Analysis speed on {model.name} ({n_blocks} blocks)")
    for note in result.notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
