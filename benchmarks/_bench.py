"""What the speed benchmarks share: arguments, environment, alternating timing, FLOPs, results.

Every speed script in ``benchmarks/`` runs as ``python benchmarks/NAME.py [--quick] --out DIR``
and writes one JSON (and one PNG) into ``DIR``: the environment it ran in, every raw timing and
the ratios. Timings of the things compared are taken *alternately in the same process* (round
``r`` runs A then B, round ``r + 1`` runs B then A), after a warm-up, and summarized by the
median over rounds, so that a slow minute of a shared machine hits both sides alike.

Nothing here imports TensorFlow at module import time (the scripts set ``TF_*`` environment
variables first); functions that need it import it inside.

Example:
    >>> import _bench  # doctest: +SKIP
    >>> times = _bench.time_alternating({"a": f, "b": g}, rounds=5)  # doctest: +SKIP
    >>> _bench.ratio(times["a"], times["b"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import statistics
import sys
import time

#: CPU flags that decide which fast paths a CPU has (oneDNN bf16/int8, AMX).
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
             "avx_vnni", "amx_bf16", "amx_int8", "amx_tile")

#: Packages whose versions every result records (missing ones are recorded as None).
PACKAGES = ("tensorflow", "keras", "numpy", "onnx", "onnxruntime", "tf2onnx")


def make_parser(description, name=None, default_out=None):
    """An ``argparse`` parser with the options every benchmark has.

    ``--quick`` (small sizes, few rounds: the test-suite mode, well under 90 s on 2 cores),
    ``--out DIR`` (where the JSON/PNG go; default ``benchmarks/results/<name>``) and
    ``--rounds N`` (timed rounds per measurement; ``None`` lets the script pick).

    Args:
        description: the script's one-line description.
        name: the benchmark's name (its default output folder).
        default_out: default ``--out`` folder instead.

    Example:
        >>> args = make_parser("demo", "demo").parse_args(["--quick", "--out", "/tmp/b"])
        >>> args.quick, args.out
        (True, '/tmp/b')
    """
    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few rounds (seconds, for tests)")
    parser.add_argument("--out", default=default_out or os.path.join(results, name or ""),
                        help="output folder (default: benchmarks/results/<name>)")
    parser.add_argument("--rounds", type=_positive_int_arg, default=None,
                        help="timed rounds per measurement (default: the script's)")
    return parser


def _positive_int_arg(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


# -- environment -------------------------------------------------------------------------
def cpu_info():
    """``{"model", "logical_cores", "usable_cores", "flags"}`` of this machine's CPU (Linux
    ``/proc/cpuinfo``; ``platform`` elsewhere). ``flags`` lists which of ``CPU_FLAGS`` it has.

    Example:
        >>> sorted(cpu_info())
        ['flags', 'logical_cores', 'model', 'usable_cores']
    """
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key == "flags":
                    flags = set(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"model": model, "logical_cores": os.cpu_count(), "usable_cores": usable,
            "flags": [f for f in CPU_FLAGS if f in flags]}


def gpu_info():
    """Names of the GPUs TensorFlow sees (``[]`` without one). Imports TensorFlow."""
    import tensorflow as tf

    out = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(device)
        except (ValueError, RuntimeError):
            details = {}
        out.append({"name": device.name, "model": details.get("device_name"),
                    "compute_capability": details.get("compute_capability")})
    return out


def package_versions(names=PACKAGES):
    """``{package: version or None}`` from the installed distributions (no imports)."""
    from importlib import metadata

    versions = {}
    for name in names:
        candidates = (name, "tensorflow-cpu") if name == "tensorflow" else (name,)
        versions[name] = None
        for candidate in candidates:
            try:
                versions[name] = metadata.version(candidate)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions


def environment():
    """Everything a timing depends on: CPU, GPU, versions, threading/oneDNN settings, load.

    Example:
        >>> env = environment()  # doctest: +SKIP
        >>> env["cpu"]["usable_cores"]  # doctest: +SKIP
        2
    """
    env_vars = ("TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                "OMP_NUM_THREADS", "XLA_FLAGS", "TF_XLA_FLAGS", "CUDA_VISIBLE_DEVICES")
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {
        "cpu": cpu_info(),
        "gpu": gpu_info(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "env": {k: os.environ.get(k) for k in env_vars},
        "load_average_at_start": load,
        "argv": sys.argv,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# -- timing ------------------------------------------------------------------------------
def calibrate(fn, min_seconds):
    """Calls of ``fn`` needed for one timing to last about ``min_seconds`` (>= 1)."""
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return max(1, math.ceil(min_seconds / max(once, 1e-9)))


def time_alternating(candidates, rounds=5, warmup=1, number=1, progress=None, cpu_times=None):
    """Seconds per call of each candidate, timed alternately, round after round.

    Every candidate is first called ``warmup`` times (compilation, caches). Then, per round,
    each candidate is timed over ``number`` consecutive calls, in the listed order in even
    rounds and the reverse order in odd ones ("ABBA"), so slow drifts of a shared machine
    fall on all candidates alike.

    Args:
        candidates: ``{name: zero-argument callable}``; a call must finish its work before it
            returns (fetch the result: ``.numpy()``).
        rounds: timed rounds (positive int).
        warmup: untimed calls per candidate before the first round.
        number: calls per timing (an int, or ``{name: int}``); the time is divided by it.
        progress: a tqdm description to show a progress bar (``None``: no bar).
        cpu_times: optional dict, filled like the result with this process's CPU seconds per
            call (all threads; on a shared machine CPU time moves less with other users'
            load than wall time, but counts spin-waiting thread pools).

    Returns:
        ``{name: [seconds per call, one per round]}``.

    Example:
        >>> t = time_alternating({"a": lambda: sum(range(100)), "b": lambda: 0}, rounds=3)
        >>> [len(v) for v in t.values()]
        [3, 3]
    """
    if not candidates:
        raise ValueError("candidates must name at least one callable, got {}")
    for name, fn in candidates.items():
        if not callable(fn):
            raise ValueError(f"candidates[{name!r}] must be callable, got {type(fn).__name__}")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got rounds={rounds!r}")
    numbers = number if isinstance(number, dict) else dict.fromkeys(candidates, number)
    for name in candidates:
        n = numbers.get(name)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"number must be a positive integer (per candidate), got "
                             f"number[{name!r}]={n!r}")
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in candidates}
    if cpu_times is not None:
        cpu_times.clear()
        cpu_times.update({name: [] for name in candidates})
    order = list(candidates)
    steps = range(rounds)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc=progress, leave=False)
    for r in steps:
        for name in (order if r % 2 == 0 else order[::-1]):
            fn, n = candidates[name], numbers[name]
            cpu_start, start = time.process_time(), time.perf_counter()
            for _ in range(n):
                fn()
            times[name].append((time.perf_counter() - start) / n)
            if cpu_times is not None:
                cpu_times[name].append((time.process_time() - cpu_start) / n)
    return times


def summary(seconds):
    """``{"median_s", "min_s", "max_s", "rounds"}`` of a list of per-call times."""
    return {"median_s": statistics.median(seconds), "min_s": min(seconds),
            "max_s": max(seconds), "rounds": len(seconds)}


def ratio(reference_s, ours_s):
    """Throughput ratio ours/reference = median(reference time) / median(our time).

    Above 1 we are faster. Example:
        >>> ratio([2.0, 2.0, 2.2], [1.0, 1.1, 0.9])
        2.0
    """
    return statistics.median(reference_s) / statistics.median(ours_s)


def paired_ratios(reference_s, ours_s):
    """Per-round ratios ``reference[r] / ours[r]`` (rounds are adjacent in time, so the
    spread of these says how much the machine's noise moves the ratio)."""
    return [a / b for a, b in zip(reference_s, ours_s)]


# -- FLOPs -------------------------------------------------------------------------------
def _layers(model):
    """Every layer inside ``model``, nested ones included (blocks' convolutions)."""
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=False, recursive=True))
    found, stack = [], list(getattr(model, "layers", []))
    while stack:  # pragma: no cover - Keras 3 always has _flatten_layers
        layer = stack.pop(0)
        found.append(layer)
        stack.extend(getattr(layer, "_layers", []))
    return found


def _build_input_shape(layer):
    shapes = getattr(layer, "_build_shapes_dict", None) or {}
    shape = next(iter(shapes.values()), None)
    if shape is None:
        raise ValueError(f"layer {layer.name!r} is not built: build the model (call it once) "
                         "before counting its FLOPs")
    return tuple(shape)


def count_flops(model):
    """Multiply-accumulates of ``model``'s convolutions and dense layers, from their shapes.

    For every ``Conv1D/2D/3D`` (grouped included), ``DepthwiseConv2D`` and ``Dense`` layer
    anywhere in the model (inside block layers too), MACs per example are
    ``prod(output spatial) * prod(kernel) * in_channels / groups * out_channels`` (dense:
    ``prod(leading dims) * in * units``), read from the shape the layer was built with.
    FLOPs are ``2 * MACs``. Bias adds, normalization, activations and pooling are not
    counted (they are < 1% of a ResNet's arithmetic). A layer called several times (weight
    sharing) counts once.

    Args:
        model: a built ``keras.Model``.

    Returns:
        ``{"macs": int, "flops": int, "by_type": {class name: macs}, "layers": int}``, per
        example.

    Example:
        >>> count_flops(keras.applications.ResNet50(weights=None))["macs"]  # doctest: +SKIP
        3857973248
    """
    import keras

    conv_types = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
    total, by_type, counted = 0, {}, 0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            in_shape = _build_input_shape(layer)
            out_shape = layer.compute_output_shape(in_shape)
            macs = (math.prod(out_shape[1:-1]) * math.prod(layer.kernel_size)
                    * in_shape[-1] * layer.depth_multiplier)
        elif isinstance(layer, conv_types):
            in_shape = _build_input_shape(layer)
            out_shape = layer.compute_output_shape(in_shape)
            macs = (math.prod(out_shape[1:-1]) * math.prod(layer.kernel_size)
                    * (in_shape[-1] // layer.groups) * layer.filters)
        elif isinstance(layer, keras.layers.Dense):
            in_shape = _build_input_shape(layer)
            macs = math.prod(in_shape[1:-1]) * in_shape[-1] * layer.units
        else:
            continue
        if any(d is None for d in in_shape[1:]):
            raise ValueError(f"layer {layer.name!r} was built with unknown dimensions "
                             f"{in_shape}; build the model with a fixed input shape")
        total += int(macs)
        counted += 1
        key = type(layer).__name__
        by_type[key] = by_type.get(key, 0) + int(macs)
    return {"macs": total, "flops": 2 * total, "by_type": by_type, "layers": counted}


# -- results -----------------------------------------------------------------------------
def write_json(data, path):
    """Write ``data`` as indented JSON to ``path`` atomically (numpy values made JSON-safe;
    NaN and infinities kept as ``NaN``/``Infinity``, as measured)."""
    from keras_resnet_lab.atomic import atomic_write_json

    return atomic_write_json(data, path, allow_nan=True)


@dataclasses.dataclass
class BenchResult:
    """One benchmark run: environment, settings, raw timings, ratios and notes.

    Args:
        name: the benchmark (``"models_bench"`` ...): the JSON/PNG file stem.
        environment: ``environment()``.
        settings: the arguments and sizes of the run.
        measurements: ``{key: {...}}``: raw per-round seconds, summaries, anything measured.
        ratios: ``{label: float}``: the headline ratios (above 1: the first thing named is
            faster / better); these are what ``plot`` draws.
        notes: free text lines (what the numbers mean, what could not be measured).
        wall_s: the run's total wall time.

    Example:
        >>> r = BenchResult("demo", {}, {}, {}, {"ours/ref": 1.02})
        >>> r.to_dict()["ratios"]
        {'ours/ref': 1.02}
    """

    name: str
    environment: dict
    settings: dict
    measurements: dict
    ratios: dict
    notes: list = dataclasses.field(default_factory=list)
    wall_s: float = 0.0

    def to_dict(self):
        """A JSON-serializable dict."""
        return dataclasses.asdict(self)

    def to_json(self, path):
        """Write ``to_dict()`` to ``path`` atomically; returns the path."""
        return write_json(self.to_dict(), path)

    def plot(self, path, title=None, target=1.0,
             xlabel="ratio (> 1: the first named is faster)"):
        """A horizontal bar chart of ``ratios`` (with a line at ``target``) written to ``path``
        as PNG, atomically; returns the path."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from keras_resnet_lab.atomic import save_figure

        labels = list(self.ratios)
        values = [float(self.ratios[k]) for k in labels]
        fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(labels), 2) + 1.2))
        colors = ["tab:green" if v >= target else "tab:red" for v in values]
        ax.barh(range(len(labels)), values, color=colors)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.invert_yaxis()
        if target is not None:
            ax.axvline(target, color="black", lw=0.8, ls="--")
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.3g}", va="center", fontsize=8)
        cpu = self.environment.get("cpu", {}) if self.environment else {}
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_title(title or f"{self.name} ({cpu.get('model', '?')}, "
                               f"{cpu.get('usable_cores', '?')} cores)", fontsize=9)
        fig.tight_layout()
        return save_figure(fig, path)

    def save(self, out_dir):
        """Write ``<out_dir>/<name>.json`` and ``<name>.png``; returns both paths."""
        json_path = self.to_json(os.path.join(out_dir, f"{self.name}.json"))
        png_path = self.plot(os.path.join(out_dir, f"{self.name}.png"))
        return json_path, png_path
