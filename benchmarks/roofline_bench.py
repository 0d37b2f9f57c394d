"""How close ResNet-50 inference gets to this machine's limit, and what moves it.

The limit is measured, not looked up: float32 dense matrix products (``tf.matmul`` of n x n
matrices, ``2 n^3`` FLOPs) timed through TensorFlow in the same rounds as the model, so both
see the same machine load (``fraction_of_peak``: per round, model rate / best matmul rate of
that round, median over rounds). TensorFlow's matmul itself depends on the oneDNN setting, so
the machine's peak (``against_machine_peak``) is the best matmul rate measured anywhere in the
run, oneDNN on or off. The model's FLOPs
are counted from its layers (``_bench.count_flops``: 2 x the multiply-accumulates of every
convolution and dense layer, from their shapes; ResNet-50 v1.5 at 224x224 = 4.09 GMACs =
8.18 GFLOPs per image). Achieved GFLOP/s = FLOPs per image x images/s; the fraction of peak
is achieved / peak.

What is tried (each against the plain float32 ``tf.function`` baseline, timed alternately in
one process unless said otherwise):

- ``xla``: the same function with ``jit_compile=True``;
- ``mixed_bfloat16`` / ``mixed_float16``: the model built under that Keras policy (the
  logits stay float32); bfloat16 has hardware support on CPUs with ``avx512_bf16`` / AMX, float16
  on GPUs (and CPUs with ``avx512_fp16``/AMX-FP16);
- ``onnxruntime``: the model converted with tf2onnx (opset 17) and run by onnxruntime's best
  available execution provider;
- layout: the model is channels-last (NHWC, Keras's default and the only layout our blocks
  support); one 3x3 convolution is timed NHWC against NCHW to show what the other layout would
  cost on this backend (TensorFlow's default CPU kernels refuse NCHW; oneDNN accepts it);
- oneDNN: ``TF_ENABLE_ONEDNN_OPTS`` is read once at TensorFlow import, so the baseline and the
  matmul peak are measured in child processes with it set to 1 and to 0, alternately
  (on, off, off, on, ...). Processes run at different moments, so each child also times a
  numpy matrix product (independent of oneDNN) in the same rounds, and the on/off speed-up
  compares model time / numpy time.

Writes ``roofline_bench.json`` (environment, FLOPs, every raw timing, GFLOP/s, fractions of
peak, speed-ups) and ``roofline_bench.png`` into ``--out``.

Usage:
    python benchmarks/roofline_bench.py                    # ResNet-50, 224x224
    python benchmarks/roofline_bench.py --quick --out /tmp/bench

(default ``--out``: ``benchmarks/results/roofline_bench``)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.dirname(_HERE))

import _bench  # noqa: E402
import numpy as np  # noqa: E402

VARIANTS = ("xla", "mixed_bfloat16", "mixed_float16", "onnxruntime")


def matmul_callable(n, dtype="float32", seed=0):
    """A zero-argument callable timing one ``n x n`` by ``n x n`` ``tf.matmul`` (2 n^3 FLOPs).

    The product stays on the device; only one element is fetched, so the time is the
    multiplication's, not a copy's.
    """
    import tensorflow as tf

    gen = tf.random.Generator.from_seed(seed)
    a = tf.cast(gen.normal((n, n)), dtype)
    b = tf.cast(gen.normal((n, n)), dtype)
    fn = tf.function(lambda p, q: tf.matmul(p, q)[0, 0])
    return lambda: fn(a, b).numpy()


def build_model(depth, image_size, policy=None):
    """Our ResNet (v1.5) under ``policy`` (``None``: float32), logits kept in float32."""
    import keras

    from keras_resnet_lab.models import resnet
    from keras_resnet_lab.training.precision import mixed_precision_model

    keras.utils.set_random_seed(0)
    shape = (image_size, image_size, 3)
    if policy is None:
        return resnet(depth, input_shape=shape)
    return mixed_precision_model(lambda: resnet(depth, input_shape=shape), policy)


def model_callable(model, x, jit_compile=False):
    """A zero-argument callable running ``model(x, training=False)`` compiled, result fetched."""
    import tensorflow as tf

    fn = tf.function(lambda t: model(t, training=False), jit_compile=jit_compile)
    x = tf.constant(x)
    return lambda: np.asarray(fn(x), "float32")


def onnx_callable(model, x, opset=17):
    """``(callable, provider, convert_s)``: the model converted by tf2onnx, run by onnxruntime."""
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    start = time.perf_counter()
    spec = [tf.TensorSpec((None, *model.input.shape[1:]), tf.float32, name="input")]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    convert_s = time.perf_counter() - start
    available = ort.get_available_providers()
    provider = next((p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in available), available[0])
    session = ort.InferenceSession(proto.SerializeToString(), providers=[provider])
    name = session.get_inputs()[0].name
    return (lambda: session.run(None, {name: x})[0]), provider, convert_s


def _gflops(flops, seconds):
    return flops / seconds / 1e9


def _median(values):
    return _bench.summary(values)["median_s"]


def numpy_matmul_callable(n, seed=0):
    """A zero-argument callable timing ``numpy.dot`` of two ``n x n`` float32 matrices.

    numpy's BLAS does not depend on TensorFlow's oneDNN setting, so the model's time divided
    by this one (same round) compares processes run at different moments of a shared
    machine's load.
    """
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n)).astype("float32")
    b = rng.normal(size=(n, n)).astype("float32")
    return lambda: np.dot(a, b)


def measure_baseline(depth, image_size, batch, sizes, rounds, seed=0):
    """Baseline model, TensorFlow matmul peak and the numpy yardstick timed alternately: what a
    oneDNN child reports."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    model = build_model(depth, image_size)
    flops = _bench.count_flops(model)["flops"]
    x = rng.uniform(0, 1, (batch, image_size, image_size, 3)).astype("float32")
    cands = {"tf_fp32": model_callable(model, x)}
    cands.update({f"matmul_{n}": matmul_callable(n) for n in sizes})
    number = {k: 1 for k in cands}
    for n in sizes:
        number[f"matmul_{n}"] = _bench.calibrate(cands[f"matmul_{n}"], 0.2)
    yardstick = numpy_matmul_callable(max(sizes))
    cands["yardstick"] = yardstick
    number["yardstick"] = _bench.calibrate(yardstick, 0.2)
    times = _bench.time_alternating(cands, rounds=rounds, warmup=2, number=number)
    yard = times.pop("yardstick")
    out = {"raw_s": times, "yardstick_s": yard, "flops_per_image": flops,
           "model_over_yardstick": statistics.median(
               [m / y for m, y in zip(times["tf_fp32"], yard)]),
           "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
           "tf_version": tf.__version__}
    out.update(_rates(times, flops, batch, sizes))
    return out


def _rates(times, flops, batch, sizes):
    """GFLOP/s, images/s and fractions of the matmul peak from alternated timings.

    Round ``r``'s peak is its best matmul rate; a variant's fraction of peak is the median
    over rounds of (its rate in round r) / (peak in round r): both were timed moments apart,
    so a change of machine load between rounds cancels out.
    """
    rounds = len(next(iter(times.values())))
    peak_by_round = [max(_gflops(2 * n ** 3, times[f"matmul_{n}"][r]) for n in sizes)
                     for r in range(rounds)]
    variants = [k for k in times if not k.startswith("matmul_")]
    rate_by_round = {k: [_gflops(flops * batch, t) for t in times[k]] for k in variants}
    return {
        "matmul_gflops": {str(n): _gflops(2 * n ** 3, _median(times[f"matmul_{n}"]))
                          for n in sizes},
        "peak_gflops": statistics.median(peak_by_round),
        "peak_gflops_by_round": peak_by_round,
        "achieved_gflops": {k: statistics.median(v) for k, v in rate_by_round.items()},
        "images_per_s": {k: batch / _median(times[k]) for k in variants},
        "fraction_of_peak": {k: statistics.median([a / p for a, p in zip(v, peak_by_round)])
                             for k, v in rate_by_round.items()},
    }


def run_child(setting, args):
    """Run ``measure_baseline`` in a fresh process with ``TF_ENABLE_ONEDNN_OPTS=setting``."""
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=setting, TF_CPP_MIN_LOG_LEVEL="2")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "child.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--child", path,
               "--depth", str(args.depth), "--image-size", str(args.image_size),
               "--batch", str(args.batch), "--rounds", str(args.child_rounds),
               "--sizes", *map(str, args.sizes)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=args.child_timeout)
        if proc.returncode != 0 or not os.path.exists(path):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {"error": f"child exited {proc.returncode}: {' | '.join(tail)}"}
        with open(path) as f:
            return json.load(f)


def layout_check(batch, rounds, rng):
    """One 3x3 convolution (64 -> 64 channels, 56x56) NHWC against NCHW, alternately."""
    import tensorflow as tf

    x = tf.constant(rng.normal(size=(batch, 56, 56, 64)).astype("float32"))
    w = tf.constant(rng.normal(size=(3, 3, 64, 64)).astype("float32"))
    nhwc = tf.function(lambda t: tf.nn.conv2d(t, w, 1, "SAME", data_format="NHWC"))
    nchw = tf.function(lambda t: tf.nn.conv2d(t, w, 1, "SAME", data_format="NCHW"))
    xt = tf.transpose(x, (0, 3, 1, 2))
    try:
        nchw(xt)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
        return {"nchw": f"unsupported: {str(error).strip().splitlines()[0][:160]}"}
    times = _bench.time_alternating({"nhwc": lambda: nhwc(x).numpy(),
                                     "nchw": lambda: nchw(xt).numpy()},
                                    rounds=rounds, warmup=2, number=3)
    return {"raw_s": times, "nchw_over_nhwc_time": _median(times["nchw"]) / _median(times["nhwc"])}


def main(argv=None):
    parser = _bench.make_parser(__doc__.splitlines()[0], "roofline_bench")
    parser.add_argument("--depth", type=int, default=None,
                        help="ResNet depth (default 50; quick: 18)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="input side (default 224; quick: 64)")
    parser.add_argument("--batch", type=int, default=None, help="batch (default 32; quick: 4)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="matmul sizes n (default 1024 2048; quick: 512 1024)")
    parser.add_argument("--variants", nargs="*", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--onednn-runs", type=int, default=None,
                        help="child processes per oneDNN setting (default 3; quick: 1; 0 skips)")
    parser.add_argument("--child-timeout", type=int, default=600)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.depth = args.depth or (18 if args.quick else 50)
    args.image_size = args.image_size or (64 if args.quick else 224)
    args.batch = args.batch or (4 if args.quick else 32)
    args.sizes = args.sizes or ([512, 1024] if args.quick else [1024, 2048])
    rounds = args.rounds or (3 if args.quick else 7)
    args.child_rounds = args.rounds or (3 if args.quick else 5)
    if args.onednn_runs is None:
        args.onednn_runs = 1 if args.quick else 3
    if args.child:
        _bench.write_json(measure_baseline(args.depth, args.image_size, args.batch, args.sizes,
                                           args.child_rounds), args.child)
        return None

    start = time.perf_counter()
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    env = _bench.environment()
    cpu_flags = set(env["cpu"]["flags"])
    has_gpu = bool(env["gpu"])
    model = build_model(args.depth, args.image_size)
    flops, extra = _bench.count_flops(model), {}
    if args.depth == 50 and args.image_size == 224:
        # He et al. / torchvision: ResNet-50 v1.5 = 4.09 GMACs per 224x224 image
        extra["flop_count_check"] = {"gmacs": flops["macs"] / 1e9, "expected_gmacs": 4.09,
                                     "ok": abs(flops["macs"] / 1e9 - 4.09) < 0.01}
    x = rng.uniform(0, 1, (args.batch, args.image_size, args.image_size, 3)).astype("float32")
    base = model_callable(model, x)
    reference = base()
    scale = float(np.max(np.abs(reference)))
    cands, parity, notes = {"tf_fp32": base}, {}, []

    def check(label, output):
        parity[label] = {"max_abs_diff": float(np.max(np.abs(np.asarray(output, "float32")
                                                             - reference))),
                         "output_scale": scale}

    if "xla" in args.variants:
        run = model_callable(model, x, jit_compile=True)
        t = time.perf_counter()
        check("xla", run())
        extra["xla_compile_s"] = time.perf_counter() - t
        cands["xla"] = run
    for policy in ("mixed_bfloat16", "mixed_float16"):
        if policy not in args.variants:
            continue
        mixed = build_model(args.depth, args.image_size, policy)
        mixed.set_weights(model.get_weights())
        run = model_callable(mixed, x)
        check(policy, run())
        cands[policy] = run
    if "onnxruntime" in args.variants:
        try:
            run, provider, convert_s = onnx_callable(model, x)
            check("onnxruntime", run())
            cands["onnxruntime"] = run
            extra.update(onnx_provider=provider, onnx_convert_s=convert_s)
        except ImportError as error:
            notes.append(f"onnxruntime not measured: {error}")
    for n in args.sizes:
        cands[f"matmul_{n}"] = matmul_callable(n)
    number = {k: 1 for k in cands}
    for n in args.sizes:
        number[f"matmul_{n}"] = _bench.calibrate(cands[f"matmul_{n}"], 0.2)
    times = _bench.time_alternating(cands, rounds=rounds, warmup=2, number=number,
                                    progress="roofline")
    in_process = {"raw_s": times, "calls_per_timing": number}
    in_process.update(_rates(times, flops["flops"], args.batch, args.sizes))
    in_process["speedup_over_tf_fp32"] = {
        k: statistics.median(_bench.paired_ratios(times["tf_fp32"], v))
        for k, v in times.items() if not k.startswith("matmul_")}

    onednn = {"1": [], "0": []}
    for i in range(args.onednn_runs):
        for setting in (("1", "0") if i % 2 == 0 else ("0", "1")):
            onednn[setting].append(run_child(setting, args))
    onednn_summary = {}
    for setting, runs in onednn.items():
        ok = [r for r in runs if "error" not in r]
        if ok:
            onednn_summary[setting] = {
                "images_per_s": float(np.median([r["images_per_s"]["tf_fp32"] for r in ok])),
                "peak_gflops": float(np.median([r["peak_gflops"] for r in ok])),
                "fraction_of_peak": float(np.median([r["fraction_of_peak"]["tf_fp32"]
                                                     for r in ok])),
                "model_over_yardstick": float(np.median([r["model_over_yardstick"]
                                                         for r in ok]))}
    layout = layout_check(args.batch, rounds, rng)

    # The machine's limit: the best matmul rate measured anywhere in this run (oneDNN on, in
    # this process, or either setting in the children).
    peaks = [in_process["peak_gflops"]] + [s["peak_gflops"] for s in onednn_summary.values()]
    machine_peak = max(peaks)
    best = {"peak_gflops": machine_peak, "achieved_gflops": {}, "fraction": {}}
    for label, gflops in in_process["achieved_gflops"].items():
        best["achieved_gflops"][label] = gflops  # this process: TensorFlow's default oneDNN
    for setting, summ in onednn_summary.items():
        best["achieved_gflops"][f"tf_fp32 oneDNN {'on' if setting == '1' else 'off'} "
                                f"(child)"] = summ["images_per_s"] * flops["flops"] / 1e9
    best["fraction"] = {k: v / machine_peak for k, v in best["achieved_gflops"].items()}
    ratios = {f"{k} / tf_fp32 (speed-up)": v
              for k, v in in_process["speedup_over_tf_fp32"].items() if k != "tf_fp32"}
    ratios["tf_fp32 fraction of same-round matmul peak"] = (
        in_process["fraction_of_peak"]["tf_fp32"])
    for label, fraction in best["fraction"].items():
        if "child" in label:
            ratios[f"{label} fraction of machine peak"] = fraction
    if "1" in onednn_summary and "0" in onednn_summary:
        # load-normalized: each child's model time over its numpy-matmul time of the same round
        ratios["oneDNN on / off (speed-up)"] = (onednn_summary["0"]["model_over_yardstick"]
                                                / onednn_summary["1"]["model_over_yardstick"])
    if "nchw_over_nhwc_time" in layout:
        ratios["conv NHWC / NCHW (speed-up)"] = layout["nchw_over_nhwc_time"]

    notes.append(f"Layout: channels-last (NHWC) throughout: keras.config.image_data_format()"
                 f" = {keras.config.image_data_format()!r}; our blocks support only "
                 "channels-last.")
    bf16 = sorted(cpu_flags & {"avx512_bf16", "amx_bf16"})
    notes.append(f"bfloat16: this CPU has {', '.join(bf16)}" if bf16 else
                 "bfloat16: this CPU has no avx512_bf16/amx_bf16 (emulated)")
    if has_gpu:
        notes.append("float16: measured on the GPU")
    elif "avx512_fp16" not in cpu_flags:
        notes.append("float16: this CPU has no avx512_fp16/AMX-FP16; oneDNN refuses DT_HALF "
                     "and TensorFlow falls back to Eigen kernels")
    if not has_gpu:
        notes.append("No GPU on this machine: CPU numbers only.")
    result = _bench.BenchResult(
        name="roofline_bench", environment=env,
        settings={"quick": args.quick, "depth": args.depth, "image_size": args.image_size,
                  "batch": args.batch, "matmul_sizes": args.sizes, "rounds": rounds,
                  "variants": args.variants, "onednn_runs": args.onednn_runs,
                  "model": model.name, "data_format": keras.config.image_data_format(),
                  "tensorflow": tf.__version__},
        measurements={"flops": flops, "gflops_per_image": flops["flops"] / 1e9,
                      "in_process": in_process, "parity": parity, "oneDNN": onednn,
                      "oneDNN_summary": onednn_summary, "layout": layout,
                      "against_machine_peak": best, **extra},
        ratios=ratios, notes=notes, wall_s=time.perf_counter() - start)
    paths = result.save(args.out)
    print(f"{model.name} {args.image_size}x{args.image_size} b{args.batch}: "
          f"{flops['flops'] / 1e9:.2f} GFLOPs/image; machine matmul peak "
          f"{machine_peak:.0f} GFLOP/s; " + ", ".join(
              f"{k} {best['achieved_gflops'][k]:.0f} GFLOP/s ({100 * v:.0f}%)"
              for k, v in best["fraction"].items()))
    print(f"roofline_bench: {paths[0]} and {paths[1]} ({result.wall_s:.0f} s)")
    return result


if __name__ == "__main__":
    main()
