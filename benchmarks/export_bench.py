"""Throughput of the exported ONNX artifact (onnxruntime) against Keras ``predict``, and the
cost of exposing every block's output.

One model (CIFAR ResNet-20 at 32x32; ``--quick``: a 3-block net at 16x16) is exported twice
with ``keras_resnet_lab.export.export_onnx`` (parity checked at export): with every block's
output (``intermediate=True``) and with the model's output only. At batch 1 and 32, four
candidates are timed alternately in this one process (warm-up first, "ABBA" rounds, median):

- ``keras``: ``model.predict(x, batch_size=B, verbose=0)``;
- ``keras_features``: the same on the multi-output features model (stem + blocks + output);
- ``ort``: onnxruntime (CPU provider) on the output-only artifact;
- ``ort_features``: onnxruntime on the artifact with every block's output, all fetched;
- ``keras_fn`` / ``keras_fn_features``: ``tf.function(model(x, training=False))`` with the
  result fetched, the fastest Keras path, because ``predict`` pays a fixed cost per call
  (about 75 ms on 2 CPU cores) that hides the model at small batches.

Ratios (one JSON, ``export_bench.json``, and ``export_bench.png``):

- ``onnxruntime/keras bB``: Keras time / onnxruntime time, output only (> 1: onnxruntime
  faster); ``... +intermediates``: the same with every block's output;
- ``onnxruntime/keras tf.function bB`` (and ``+intermediates``): the same against
  ``keras_fn``;
- ``intermediates cost onnxruntime bB``: time with every block's output / time without
  (> 1: exposing the blocks costs that factor); the same for Keras predict and tf.function.

Usage:
    python benchmarks/export_bench.py --out benchmarks/results
    python benchmarks/export_bench.py --quick --out /tmp/bench
"""

import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.dirname(_HERE))

import _bench  # noqa: E402
import numpy as np  # noqa: E402

CANDIDATES = ("keras", "keras_features", "ort", "ort_features", "keras_fn",
              "keras_fn_features")


def build(quick, seed):
    """The benchmarked model: ResNet-20 at 32x32, or a 3-block net at 16x16 (quick)."""
    import keras

    from keras_resnet_lab.models import cifar_network, cifar_resnet

    keras.utils.set_random_seed(seed)
    if quick:
        return cifar_network(1, widths=(8, 16, 32), input_shape=(16, 16, 3), num_classes=10,
                             name="quick_net")
    return cifar_resnet(20, input_shape=(32, 32, 3), num_classes=10)


def candidates(model, features, sessions, x, batch):
    """The zero-argument callables timed at this batch size (see ``CANDIDATES``)."""
    import tensorflow as tf

    full, out = sessions
    call = tf.function(lambda t: model(t, training=False))
    call_features = tf.function(lambda t: features(t, training=False))
    tensor = tf.constant(x)

    def keras_predict():
        model.predict(x, batch_size=batch, verbose=0)

    def keras_features():
        features.predict(x, batch_size=batch, verbose=0)

    def ort():
        out.run(["output"], {"input": x})

    def ort_features():
        full.run(None, {"input": x})

    def keras_fn():
        call(tensor).numpy()

    def keras_fn_features():
        [t.numpy() for t in call_features(tensor)]

    return {"keras": keras_predict, "keras_features": keras_features, "ort": ort,
            "ort_features": ort_features, "keras_fn": keras_fn,
            "keras_fn_features": keras_fn_features}


def measure(model, features, sessions, batch, rounds, min_round_s, rng):
    """Raw per-round seconds per call and images/s of each candidate at ``batch``."""
    shape = (batch,) + tuple(model.inputs[0].shape[1:])
    x = rng.standard_normal(shape).astype("float32")
    fns = candidates(model, features, sessions, x, batch)
    for fn in fns.values():  # warm-up before calibrating (tracing, session allocation)
        fn()
    number = {name: _bench.calibrate(fn, min_round_s) for name, fn in fns.items()}
    times = _bench.time_alternating(fns, rounds=rounds, warmup=1, number=number,
                                    progress=f"batch {batch}")
    return {"raw_s": times, "calls_per_round": number,
            "summary": {k: _bench.summary(v) for k, v in times.items()},
            "images_per_s": {k: batch / _bench.summary(v)["median_s"]
                             for k, v in times.items()}}


def ratios_of(batch, raw):
    """The headline ratios at one batch size (see the module docstring)."""
    r = _bench.ratio
    return {
        f"onnxruntime/keras b{batch}": r(raw["keras"], raw["ort"]),
        f"onnxruntime/keras b{batch} +intermediates": r(raw["keras_features"],
                                                        raw["ort_features"]),
        f"intermediates cost onnxruntime b{batch}": r(raw["ort_features"], raw["ort"]),
        f"intermediates cost keras b{batch}": r(raw["keras_features"], raw["keras"]),
        f"onnxruntime/keras tf.function b{batch}": r(raw["keras_fn"], raw["ort"]),
        f"onnxruntime/keras tf.function b{batch} +intermediates": r(raw["keras_fn_features"],
                                                                    raw["ort_features"]),
        f"intermediates cost keras tf.function b{batch}": r(raw["keras_fn_features"],
                                                            raw["keras_fn"]),
    }


def main(argv=None):
    parser = _bench.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32],
                        help="batch sizes (default 1 32)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if min(args.batch_sizes) < 1:
        parser.error("--batch-sizes must be positive")
    rounds = args.rounds or (5 if args.quick else 9)
    min_round_s = 0.1 if args.quick else 0.3

    start = time.perf_counter()
    import onnxruntime

    from keras_resnet_lab.export import export_onnx, features_model

    model = build(args.quick, args.seed)
    features, _ = features_model(model)
    env = _bench.environment()
    parity = {}
    with tempfile.TemporaryDirectory() as tmp:
        sessions = []
        for intermediate in (True, False):
            path = os.path.join(tmp, "full" if intermediate else "out")
            manifest = export_onnx(model, path, intermediate=intermediate)
            parity["with" if intermediate else "without"] = manifest.parity["worst_diff"]
            options = onnxruntime.SessionOptions()
            # no busy-waiting of idle onnxruntime threads: it would steal the CPU from the
            # candidate timed next on a small machine
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            sessions.append(onnxruntime.InferenceSession(
                os.path.join(path, "model.onnx"), options,
                providers=["CPUExecutionProvider"]))
        n_outputs = len(sessions[0].get_outputs())
    rng = np.random.default_rng(args.seed)
    measurements, ratios = {}, {}
    for batch in args.batch_sizes:
        result = measure(model, features, sessions, batch, rounds, min_round_s, rng)
        measurements[f"batch{batch}"] = result
        ratios.update(ratios_of(batch, result["raw_s"]))
        print(f"batch {batch}: " + ", ".join(f"{k} {v:.0f} img/s"
                                             for k, v in result["images_per_s"].items()),
              flush=True)
    result = _bench.BenchResult(
        name="export_bench", environment=env,
        settings={"quick": args.quick, "model": model.name, "params": int(model.count_params()),
                  "input_shape": list(model.inputs[0].shape[1:]), "batch_sizes":
                  args.batch_sizes, "rounds": rounds, "min_round_s": min_round_s,
                  "seed": args.seed, "outputs_with_intermediates": n_outputs,
                  "export_parity_max_abs_diff": parity,
                  "method": "keras: model.predict(x, batch_size=B, verbose=0); keras_fn: "
                            "tf.function(model(x, training=False)) + .numpy(); onnxruntime: "
                            "CPUExecutionProvider session.run, default threads, no spinning; "
                            "alternating "
                            "ABBA rounds after warm-up, calls per round calibrated, median"},
        measurements=measurements, ratios=ratios,
        notes=["onnxruntime/keras: Keras time / onnxruntime time (> 1: onnxruntime faster).",
               "intermediates cost: time with every block's output / time with the model's "
               "output only (> 1: exposing the blocks costs that factor).",
               "Keras predict has a fixed per-call overhead that dominates small batches; "
               "the tf.function ratios compare the models' compute."],
        wall_s=time.perf_counter() - start)
    paths = result.save(args.out)
    for label, value in ratios.items():
        print(f"  {label}: {value:.3g}")
    print(f"export_bench: {paths[0]} and {paths[1]} ({result.wall_s:.0f} s)")
    return result


if __name__ == "__main__":
    main()
