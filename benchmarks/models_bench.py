"""Speed of our models against the references: keras.applications ResNet-50 v1/v2 and a plain
functional CIFAR ResNet-56.

For each family the reference and ours are timed alternately in this one process (warm-up
first, median of rounds, "ABBA" order), with the same method for every model:

- inference: ``tf.function(lambda x: model(x, training=False))`` on a fixed input, output
  fetched (``.numpy()``), at each ``--batch-sizes``;
- training: ``model.train_on_batch(x, y)`` after ``model.compile(SGD(0.1, momentum 0.9),
  sparse categorical cross-entropy on logits)``, at ``--train-batch``. Next to the timings,
  ``training_graph`` counts the operations of each model's training-step graph by type and
  lists where ours differ from the reference's: identical counts mean the same work per step,
  so any timing difference is noise.

The ResNet-50 families compare three models:

- ``ref``: ``keras.applications.ResNet50`` / ``ResNet50V2`` (``weights=None``, logits);
- ``ours``: ``resnet(50)`` / ``resnet(50, preact=True)``, our default builder. Its stride sits
  on the 3x3 convolution of the first block of a stage (torchvision's "v1.5") while
  keras.applications v1 strides the first 1x1 and v2 strides the *last* block of a stage: the
  same parameters, but 4.09 GMACs against 3.86 (v1) and 3.48 (v2), so its throughput ratio is
  bounded by the FLOP ratio (reported as ``flop_ratio``);
- ``same``: ``from_keras_applications(ref)``: our blocks arranged exactly as the reference
  (same FLOPs, same weights; its outputs are checked equal). ``same/ref`` is the cost or gain
  of our block design itself;
- ``same_unfolded`` (inference only): ``same`` traced with ``BlockBase.fold_batch_norm`` off,
  each batch norm run after its convolution as in the reference: what the inference-time fold
  of the batch norms into the convolutions gains;
- ``same_unfused`` (training only): a copy of ``same`` whose training step is traced with
  ``FusedBatchNormalization.fused`` off, each batch norm computed by Keras's separate
  operations as in the reference: what the fused batch-norm kernel gains.

The CIFAR ResNet-56 reference (``reference_cifar_resnet``, below) is the same network written
as plain functional Keras layers (ZeroPadding2D + valid strided convolutions, option-A
shortcut as 1x1 max-pool + channel zero-padding); our weights are copied into it and the
outputs are checked equal before timing. A second instance of the reference, ``ref_copy``,
is timed with them: its ratio to ``ref`` is the noise floor of the run (the same graph twice).
``ours_unfused`` is our model's copy with the fused batch-norm kernel off, as above; its
training graph is op for op the reference's.

``--components`` (on in full mode) times the one design choice that costs extra work at the
same FLOPs: the torch-style symmetric zero-padding of strided 3x3 convolutions (an explicit
``Pad`` + ``valid`` convolution) against TensorFlow's ``padding="same"`` (which pads
asymmetrically and is a different function), at ResNet-50's three strided shapes.

Writes ``models_bench.json`` (environment, settings, FLOPs, every raw timing, ratios) and
``models_bench.png`` (the ratios) into ``--out``.

Usage:
    python benchmarks/models_bench.py                     # 224x224
    python benchmarks/models_bench.py --quick --out /tmp/bench
    python benchmarks/models_bench.py --batch-sizes 1 256 --train-batch 256 \\
        --mixed-precision --jit-compile --out results_gpu                 # on a GPU

(default ``--out``: ``benchmarks/results/models_bench``)
"""

import argparse
import contextlib
import gc
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.dirname(_HERE))

import _bench  # noqa: E402
import numpy as np  # noqa: E402

FAMILIES = ("resnet50_v1", "resnet50_v2", "cifar_resnet56")


def reference_cifar_resnet(depth=56, input_shape=(32, 32, 3), num_classes=10):
    """CIFAR ResNet-(6n+2) of He et al. (arXiv 1512.03385) as plain functional Keras layers.

    The reference for the speed comparison: 16/32/64 channels, post-activation basic blocks,
    option-A shortcuts (1x1 max-pool subsampling, zero-padded channels), strided 3x3
    convolutions with symmetric zero padding, batch-norm momentum 0.9 and epsilon 1e-5, no
    convolution biases. Layer names ``stage{s}_block{b}_{conv1,bn1,conv2,bn2}``.

    Args:
        depth: 6n+2.
        input_shape: input shape.
        num_classes: logits.

    Example:
        >>> model = reference_cifar_resnet(20)  # doctest: +SKIP
    """
    import keras
    from keras import layers, ops

    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n+2 (8, 14, 20, ..., 56, 110), got depth={depth!r}")
    n = (depth - 2) // 6

    def bn(name):
        return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)

    def conv(x, filters, strides, name):
        if strides > 1:
            x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        return layers.Conv2D(filters, 3, strides=strides, use_bias=False,
                             padding="same" if strides == 1 else "valid", name=name)(x)

    inputs = keras.Input(input_shape)
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.ReLU(name="stem_relu")(bn("stem_bn")(x))
    for s, width in enumerate((16, 32, 64), start=1):
        for b in range(1, n + 1):
            name, strides = f"stage{s}_block{b}", 2 if s > 1 and b == 1 else 1
            y = conv(x, width, strides, f"{name}_conv1")
            y = layers.ReLU(name=f"{name}_relu1")(bn(f"{name}_bn1")(y))
            y = bn(f"{name}_bn2")(conv(y, width, 1, f"{name}_conv2"))
            shortcut = x
            if strides > 1:
                shortcut = layers.MaxPooling2D(1, strides, name=f"{name}_subsample")(shortcut)
            extra = width - int(shortcut.shape[-1])
            if extra:
                shortcut = layers.Lambda(
                    lambda t, e=extra: ops.pad(t, ((0, 0), (0, 0), (0, 0), (0, e))),
                    name=f"{name}_pad_channels")(shortcut)
            x = layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, layers.Dense(num_classes, name="predictions")(x),
                       name=f"reference_resnet{depth}")


def copy_cifar_weights(ours, reference):
    """Copy the weights of our ``cifar_resnet`` into ``reference_cifar_resnet`` (same depth)."""
    from keras_resnet_lab.models import blocks

    for name in ("stem_conv", "stem_bn", "predictions"):
        reference.get_layer(name).set_weights(ours.get_layer(name).get_weights())
    for info in blocks(ours):
        for i, (conv, norm) in enumerate(zip(info.layer.convs, info.layer.norms), start=1):
            reference.get_layer(f"{info.name}_conv{i}").set_weights(conv.get_weights())
            reference.get_layer(f"{info.name}_bn{i}").set_weights(norm.get_weights())


def _randomize_bn(model, rng):
    """Non-trivial batch-norm statistics, so an equality check of outputs means something."""
    import keras

    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = (np.asarray(w) for w in layer.get_weights())
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                               rng.normal(0, 0.1, beta.shape).astype("float32"),
                               rng.normal(0, 0.1, mean.shape).astype("float32"),
                               rng.uniform(0.5, 1.5, var.shape).astype("float32")])


def build_family(family, image_size, rng):
    """``({label: model}, {label: (reference label, what it is)}, equality max |diff|)``."""
    import keras

    from keras_resnet_lab.models import cifar_resnet, from_keras_applications, resnet

    keras.utils.set_random_seed(0)
    if family == "cifar_resnet56":
        shape = (image_size, image_size, 3)
        ours = cifar_resnet(56, input_shape=shape, num_classes=10)
        _randomize_bn(ours, rng)
        reference = reference_cifar_resnet(56, input_shape=shape, num_classes=10)
        copy_cifar_weights(ours, reference)
        control = reference_cifar_resnet(56, input_shape=shape, num_classes=10)
        control.set_weights(reference.get_weights())
        models = {"ref": reference, "ours": ours, "ref_copy": control}
    else:
        shape = (image_size, image_size, 3)
        preact = family == "resnet50_v2"
        app = keras.applications.ResNet50V2 if preact else keras.applications.ResNet50
        reference = app(weights=None, input_shape=shape, classifier_activation=None)
        _randomize_bn(reference, rng)
        models = {"ref": reference, "ours": resnet(50, preact=preact, input_shape=shape),
                  "same": from_keras_applications(reference, name=f"{reference.name}_ours")}
    if keras.mixed_precision.global_policy().name != "float32":
        from keras_resnet_lab.training.precision import float32_outputs

        models = {label: float32_outputs(m) for label, m in models.items()}  # float32 logits
        reference = models["ref"]
    x = rng.uniform(0, 1, (2, *shape)).astype("float32")
    twin = models.get("same", models["ours"])
    diff = float(np.max(np.abs(np.asarray(reference(x, training=False), "float64")
                               - np.asarray(twin(x, training=False), "float64"))))
    scale = float(np.max(np.abs(np.asarray(reference(x, training=False)))))
    return models, {"max_abs_diff": diff, "output_scale": scale}


@contextlib.contextmanager
def switched(cls, attribute, value):
    """Set a class-wide switch (``BlockBase.fold_batch_norm``,
    ``FusedBatchNormalization.fused``) for what is traced inside, restoring it after."""
    before = getattr(cls, attribute)
    setattr(cls, attribute, value)
    try:
        yield
    finally:
        setattr(cls, attribute, before)


def inference_callable(model, x, jit_compile, fold=True):
    """A zero-argument callable running ``model(x, training=False)`` compiled, result fetched.

    ``fold=False`` traces it with our blocks' inference-time batch-norm folding off
    (``BlockBase.fold_batch_norm``), to measure what the fold gains."""
    import tensorflow as tf

    from keras_resnet_lab.layers.base import BlockBase

    fn = tf.function(lambda t: model(t, training=False), jit_compile=jit_compile)
    x = tf.constant(x)
    with switched(BlockBase, "fold_batch_norm", fold):
        fn.get_concrete_function(x)  # traced now
    return lambda: fn(x).numpy()


def train_callable(model, x, y, jit_compile, fused=True):
    """A zero-argument callable running one compiled ``train_on_batch`` step.

    ``fused=False`` traces the step with our batch norms' fused training kernel off
    (``FusedBatchNormalization.fused``): each runs Keras's separate operations, as the
    references' do, to measure what the fused kernel gains."""
    import keras

    from keras_resnet_lab.layers.batch_norm import FusedBatchNormalization

    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile)
    with switched(FusedBatchNormalization, "fused", fused):
        model.train_on_batch(x, y)  # traced now
    return lambda: model.train_on_batch(x, y)


def unfused_twin(model):
    """A copy of ``model`` (same weights) to time with the fused batch-norm kernel off."""
    import keras

    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return twin


def training_graph_ops(model, x, y):
    """``{op type: count}`` of one training step's TensorFlow graph: the forward pass in
    training mode, the cross-entropy and the gradients of every trainable weight.

    Two models whose step graphs hold the same operations do the same work per step, so a
    timing difference between them is the machine's noise, not their design.
    """
    import collections

    import keras
    import tensorflow as tf

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        return value, tape.gradient(value, model.trainable_variables)

    graph = step.get_concrete_function(tf.TensorSpec(x.shape, x.dtype),
                                       tf.TensorSpec(y.shape, y.dtype)).graph
    return dict(sorted(collections.Counter(op.type for op in graph.get_operations()).items()))


def graph_differences(census):
    """``{label: {op type: count - reference count}}`` for the types whose counts differ."""
    ref = census["ref"]
    return {label: {op: ops.get(op, 0) - ref.get(op, 0) for op in sorted({*ref, *ops})
                    if ops.get(op, 0) != ref.get(op, 0)}
            for label, ops in census.items() if label != "ref"}


def _time(candidates, rounds, warmup, min_round_s, progress, cpu_times=None):
    number = _bench.calibrate(next(iter(candidates.values())), min_round_s)
    return _bench.time_alternating(candidates, rounds=rounds, warmup=warmup, number=number,
                                   progress=progress, cpu_times=cpu_times)


def components(image_size, batch, rounds, rng):
    """Strided 3x3 convolutions of ResNet-50 v1.5 at ``image_size``: symmetric ``Pad`` +
    ``valid`` (ours, torch-style) against ``padding="same"`` (TensorFlow's asymmetric
    padding, a different function), inference time each, alternately."""
    import keras
    import tensorflow as tf

    out = {}
    side = image_size // 4  # after the stem
    for channels in (128, 256, 512):
        x = tf.constant(rng.uniform(0, 1, (batch, side, side, channels)).astype("float32"))
        conv_valid = keras.layers.Conv2D(channels, 3, strides=2, padding="valid", use_bias=False)
        conv_same = keras.layers.Conv2D(channels, 3, strides=2, padding="same", use_bias=False)
        pad = tf.function(lambda t, c=conv_valid: c(tf.pad(t, [[0, 0], [1, 1], [1, 1], [0, 0]])))
        same = tf.function(lambda t, c=conv_same: c(t))
        times = _time({"pad_valid": lambda f=pad, t=x: f(t).numpy(),
                       "same": lambda f=same, t=x: f(t).numpy()}, rounds, 2, 0.3, None)
        key = f"{batch}x{side}x{side}x{channels}"
        paired = _bench.paired_ratios(times["same"], times["pad_valid"])
        out[key] = {"raw_s": times, "pad_valid_over_same": statistics.median(paired)}
        side //= 2
    return out


def run_family(family, args, rng):
    """Build the family's models and time inference and a training step, alternately."""
    import keras

    from keras_resnet_lab.models import blocks

    start = time.perf_counter()
    image_size = args.cifar_size if family == "cifar_resnet56" else args.image_size
    models, check = build_family(family, image_size, rng)
    info = {}
    for label, model in models.items():
        flops = _bench.count_flops(model)
        info[label] = {"name": model.name, "params": int(model.count_params()),
                       "gmacs": flops["macs"] / 1e9, "gflops": flops["flops"] / 1e9,
                       "blocks": len(blocks(model)) if not label.startswith("ref") else None}
    result = {"image_size": image_size, "models": info, "equality_check": check,
              "inference": {}, "training": {}, "build_s": time.perf_counter() - start}
    rounds = args.rounds or (3 if args.quick else 7)
    warmup, min_round_s = (1, 0.02) if args.quick else (2, 0.5)
    for batch in args.batch_sizes:
        x = rng.uniform(0, 1, (batch, image_size, image_size, 3)).astype("float32")
        cands = {label: inference_callable(m, x, args.jit_compile) for label, m in models.items()}
        if "same" in models:  # the same network with the batch-norm fold off
            cands["same_unfolded"] = inference_callable(models["same"], x, args.jit_compile,
                                                        fold=False)
        cpu = {}
        times = _time(cands, rounds, warmup, min_round_s, f"{family} infer b{batch}", cpu)
        result["inference"][f"b{batch}"] = {
            "raw_s": times, "raw_cpu_s": cpu,
            "images_per_s": {k: batch / _bench.summary(v)["median_s"] for k, v in times.items()},
        }
        del cands
        gc.collect()
    if family in args.train_families:
        batch = args.train_batch
        x = rng.uniform(0, 1, (batch, image_size, image_size, 3)).astype("float32")
        y = rng.integers(0, int(models["ref"].output.shape[-1]), batch)
        from keras_resnet_lab.layers.batch_norm import FusedBatchNormalization

        twin_label = "same" if "same" in models else "ours"
        census = {label: training_graph_ops(m, x, y) for label, m in models.items()}
        with switched(FusedBatchNormalization, "fused", False):
            census[f"{twin_label}_unfused"] = training_graph_ops(models[twin_label], x, y)
        result["training_graph"] = {"ops": census, "differences": graph_differences(census)}
        cands = {label: train_callable(m, x, y, args.jit_compile) for label, m in models.items()}
        cands[f"{twin_label}_unfused"] = train_callable(unfused_twin(models[twin_label]), x, y,
                                                        args.jit_compile, fused=False)
        cpu = {}
        times = _time(cands, rounds, warmup, min_round_s, f"{family} train b{batch}", cpu)
        result["training"][f"b{batch}"] = {
            "raw_s": times, "raw_cpu_s": cpu,
            "images_per_s": {k: batch / _bench.summary(v)["median_s"] for k, v in times.items()},
        }
        del cands
    del models
    result["wall_s"] = time.perf_counter() - start
    keras.backend.clear_session()
    gc.collect()
    return result


def ratios_of(family, result):
    """Headline ratios ``reference time / our time`` (> 1: ours faster) of one family.

    The headline is the median over rounds of the per-round ratio (the two timings of a round
    are adjacent in time, so a change of machine load between rounds cancels out); the ratio
    of the medians is stored next to the raw timings as well.
    """
    out = {}
    tasks = [(f"infer {b}", r) for b, r in result["inference"].items()]
    tasks += [(f"train {b}", r) for b, r in result["training"].items()]
    for task, record in tasks:
        raw = record["raw_s"]
        labels = [k for k in raw if k != "ref"]
        cpu = record.get("raw_cpu_s") or {}
        record["paired_ratio_median"], record["ratio_of_medians"] = {}, {}
        record["cpu_time_ratio"] = {}
        for label in labels:
            paired = statistics.median(_bench.paired_ratios(raw["ref"], raw[label]))
            record["paired_ratio_median"][label] = paired
            record["ratio_of_medians"][label] = _bench.ratio(raw["ref"], raw[label])
            if cpu:
                record["cpu_time_ratio"][label] = statistics.median(
                    _bench.paired_ratios(cpu["ref"], cpu[label]))
            out[f"{family} {label}/ref {task}"] = paired
    return out


def main(argv=None):
    parser = _bench.make_parser(__doc__.splitlines()[0], "models_bench")
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--train-families", nargs="*", choices=FAMILIES, default=None,
                        help="families whose training step is timed (default: all; quick: "
                             "cifar_resnet56 only, ResNet-50 train-step tracing is slow)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="ResNet-50 input side (default 224; quick: 32)")
    parser.add_argument("--cifar-size", type=int, default=32, help="ResNet-56 input side")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                        help="inference batch sizes (default 1 32; quick: 1 4)")
    parser.add_argument("--train-batch", type=int, default=None,
                        help="training batch (default 32; quick: 4)")
    parser.add_argument("--jit-compile", action="store_true",
                        help="compile every measured function with XLA (all models alike)")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="build every model under the mixed_float16 policy (GPU) -- "
                             "mixed_bfloat16 on a CPU -- with float32 logits")
    parser.add_argument("--components", action=argparse.BooleanOptionalAction, default=None,
                        help="time the padding design choice (default: on in full mode)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.image_size = args.image_size or (32 if args.quick else 224)
    args.batch_sizes = args.batch_sizes or ([1, 4] if args.quick else [1, 32])
    args.train_batch = args.train_batch or (4 if args.quick else 32)
    if args.train_families is None:
        args.train_families = ["cifar_resnet56"] if args.quick else list(FAMILIES)
    if args.components is None:
        args.components = not args.quick
    for name in ("image_size", "cifar_size", "train_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if min(args.batch_sizes) < 1:
        parser.error("--batch-sizes must be positive")

    start = time.perf_counter()
    import keras
    import tensorflow as tf

    policy = None
    if args.mixed_precision:
        policy = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
        keras.mixed_precision.set_global_policy(policy)
    rng = np.random.default_rng(args.seed)
    env = _bench.environment()
    measurements, ratios = {}, {}
    for family in args.families:
        result = run_family(family, args, rng)
        measurements[family] = result
        ratios.update(ratios_of(family, result))
        if "same" in result["models"]:
            m = result["models"]
            result["flop_ratio_ref_over_ours"] = m["ref"]["gflops"] / m["ours"]["gflops"]
        print(_summary_line(family, result), flush=True)
    notes = [
        "ratio = reference time / our time, median over rounds of the per-round ratio: > 1 "
        "means ours is faster (ratio_of_medians is stored with each timing too).",
        "'same' = from_keras_applications(ref): our blocks in the reference's exact "
        "arrangement (same FLOPs and weights, outputs checked equal): the cost of our design.",
        "'ours' = default builder (stride on the 3x3 of the first block of a stage): more "
        "FLOPs than keras.applications by construction (see models.gflops).",
    ]
    if args.components:
        measurements["components"] = components(args.image_size, args.train_batch,
                                                args.rounds or 7, rng)
        for key, value in measurements["components"].items():
            ratios[f"strided conv {key}: pad+valid/same"] = value["pad_valid_over_same"]
    if not tf.config.list_physical_devices("GPU"):
        notes.append("No GPU on this machine: CPU timings only.")
    result = _bench.BenchResult(
        name="models_bench", environment=env,
        settings={"quick": args.quick, "families": args.families, "image_size": args.image_size,
                  "cifar_size": args.cifar_size, "batch_sizes": args.batch_sizes,
                  "train_batch": args.train_batch, "train_families": args.train_families,
                  "jit_compile": args.jit_compile,
                  "dtype_policy": policy or "float32", "rounds": args.rounds or
                  (3 if args.quick else 7), "seed": args.seed,
                  "method": "inference: tf.function(model(x, training=False)) + .numpy(); "
                            "training: compiled train_on_batch; alternating ABBA rounds "
                            "after 2 warm-up calls, median"},
        measurements=measurements, ratios=ratios, notes=notes,
        wall_s=time.perf_counter() - start)
    paths = result.save(args.out)
    print(f"models_bench: {paths[0]} and {paths[1]} ({result.wall_s:.0f} s)")
    return result


def _summary_line(family, result):
    parts = [f"{family} ({result['wall_s']:.0f} s)"]
    for task in ("inference", "training"):
        for batch, r in result[task].items():
            ips = r["images_per_s"]
            parts.append(f"{task[:5]} {batch}: " + ", ".join(
                f"{k} {v:.1f}" for k, v in ips.items()) + " img/s")
    for label, diff in result.get("training_graph", {}).get("differences", {}).items():
        parts.append(f"train graph {label}-ref: " + (", ".join(
            f"{n:+d} {op}" for op, n in diff.items()) or "the same operations"))
    return " | ".join(parts)


if __name__ == "__main__":
    main()
