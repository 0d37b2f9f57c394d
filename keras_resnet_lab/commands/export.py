"""``keras-resnet-lab export``: SavedModel, ONNX and/or LiteRT artifacts with every block's
output."""

import importlib.util
import json
import os

from keras_resnet_lab.commands._common import integer, number
from keras_resnet_lab.preprocessing_file import (
    PREPROCESSING_FILE,
    preprocessing_path,
    read_preprocessing,
)

FORMAT_CHOICES = ("savedmodel", "onnx", "tflite", "both", "all")
#: ``--format`` values naming several formats (``both`` keeps its meaning of old).
FORMAT_GROUPS = {"both": ("savedmodel", "onnx"), "all": ("savedmodel", "onnx", "tflite")}


def register(subparsers):
    """Add the ``export`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "export", help="write SavedModel / ONNX / LiteRT artifacts with every block's output",
        description="Export a .keras model as a SavedModel (signatures 'serve' and 'features'), "
                    "an ONNX file whose graph outputs are 'stem', every block "
                    "('stage1_block1', ...) and 'output', and/or a LiteRT (.tflite) file whose "
                    "'features' signature returns the same named outputs. Each artifact is "
                    "checked against the Keras model on a batch before it is renamed into "
                    "place, and carries a manifest.json. Writes OUT/savedmodel, OUT/onnx, "
                    "OUT/tflite.")
    parser.add_argument("model", metavar="MODEL.keras", help="a saved Keras model file")
    parser.add_argument("--format", choices=FORMAT_CHOICES, default="both",
                        help="which artifacts to write: both = savedmodel + onnx (default), "
                             "all = savedmodel + onnx + tflite")
    parser.add_argument("--out", required=True,
                        help="folder to write savedmodel/, onnx/ and/or tflite/ into")
    parser.add_argument("--no-intermediate", dest="intermediate", action="store_false",
                        help="ONNX and LiteRT: output only the model's output, not the stem "
                             "and blocks")
    parser.add_argument("--optimize", action="store_true",
                        help="ONNX: simplify the graph with onnxsim (removes the "
                             "NCHW->NHWC->NCHW Transpose round trip after each block output, "
                             "folds constants; outputs unchanged, parity checked on the "
                             "simplified graph)")
    parser.add_argument("--quantize", action="store_true",
                        help="LiteRT: dynamic-range int8 weights (about 4x smaller); checked "
                             "by the top-1 agreement with Keras on the parity batch")
    parser.add_argument("--min-agreement", type=number(0, 1), default=None,
                        help="with --quantize: the least top-1 agreement with Keras on the "
                             "parity batch (default 0.9); below it nothing is written")
    parser.add_argument("--force", action="store_true",
                        help="replace existing artifacts (atomically)")
    parser.add_argument("--opset", type=integer(), choices=range(9, 19), default=17,
                        metavar="{9..18}", help="ONNX opset, 9-18 (default 17)")
    parser.add_argument("--tolerance", type=number(0), default=1e-4,
                        help="largest allowed max abs diff between artifact and Keras, per "
                             "output, relative to the output's largest magnitude where that "
                             "exceeds 1 (default 1e-4)")
    parser.add_argument("--sample", metavar="FILE.npy", default=None,
                        help="input batch for the parity check (default: fixed-seed random "
                             "normal batch of 8; 32 for --quantize, whose top-1 agreement "
                             "real examples make meaningful)")
    parser.add_argument("--preprocessing", metavar="JSON", default=None,
                        help="how an image becomes the input, recorded in the manifest: a JSON "
                             "object or file with keys description, scale, mean, std, color "
                             "(x = (pixels * scale - mean) / std); default: the "
                             f"{PREPROCESSING_FILE} that train wrote beside MODEL.keras, if any")
    parser.set_defaults(func=run, check=check)


def check(args):
    """Every argument error, before TensorFlow loads and before anything is written; the
    preprocessing and the sample it read are kept on ``args`` for :func:`run`."""
    from keras_resnet_lab.commands._common import CliError, existing_model_file
    from keras_resnet_lab.outdir import check_target

    existing_model_file(args.model)
    formats = _formats(args)
    for flag, value, needs, module, package in (
            ("--optimize", args.optimize, "onnx", "onnxsim", "'onnxsim>=0.8,<0.9'"),
            ("--quantize", args.quantize, "tflite", None, None),
            ("--format tflite", "tflite" in formats, "tflite", "ai_edge_litert",
             "'ai-edge-litert>=2.0,<3'")):
        if value and needs not in formats:
            raise CliError(f"{flag} applies to the {needs} artifact: add it with --format "
                           f"{needs} (or all); --format {args.format} writes "
                           f"{', '.join(formats)}")
        if value and module and importlib.util.find_spec(module) is None:
            raise CliError(f"{flag} needs {module}, which is not installed: pip install "
                           f"{package}")
    if args.min_agreement is not None and not args.quantize:
        raise CliError("--min-agreement judges a quantized LiteRT artifact: give --quantize "
                       "too")
    args.preprocessing_read = _preprocessing(args.preprocessing, args.model)
    args.sample_read = _sample(args.sample)
    for kind in formats:
        check_target(os.path.join(args.out, kind), args.force)


def _formats(args):
    return FORMAT_GROUPS.get(args.format, (args.format,))


def _preprocessing(text, model_file=None):
    """``(preprocessing dict or None, where it came from or None)``: ``--preprocessing``, or
    else the ``preprocessing.json`` beside the model file."""
    from keras_resnet_lab.commands._common import CliError

    if text is None:
        if model_file is None:
            return None, None
        try:
            value = read_preprocessing(model_file)
        except ValueError as error:
            raise CliError(f"{error} (the preprocessing recorded beside the model): fix or "
                           "remove it, or pass --preprocessing") from error
        return (None, None) if value is None else (value, preprocessing_path(model_file))
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as handle:
            text = handle.read()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(f"--preprocessing is neither a JSON object nor a JSON file: "
                       f"{error}") from error
    if not isinstance(value, dict):
        raise CliError(f"--preprocessing must be a JSON object, got {value!r}")
    return value, "--preprocessing"


def _sample(path):
    from keras_resnet_lab.commands._common import CliError

    if path is None:
        return None
    import numpy as np

    if not os.path.isfile(path):
        raise CliError(f"--sample file not found: {path}")
    try:
        sample = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise CliError(f"--sample {path} is not a .npy array: {error}") from error
    if not np.issubdtype(sample.dtype, np.number):
        raise CliError(f"--sample {path} holds {sample.dtype} values, not numbers")
    if not np.all(np.isfinite(sample)):
        kind = "NaN" if np.isnan(sample).any() else "infinite values"
        raise CliError(f"--sample {path} holds {kind}: parity cannot be measured on it")
    return sample


def run(args):
    """Load the model file, export it, print where each artifact went and its parity."""
    from keras_resnet_lab.commands._common import load_model_file
    from keras_resnet_lab.export import export_model

    preprocessing, source = args.preprocessing_read  # read by check()
    if source not in (None, "--preprocessing"):
        print(f"preprocessing: recorded beside the model in {source}")
    elif source is None:
        print(f"preprocessing: none recorded (no --preprocessing, no {PREPROCESSING_FILE} "
              "beside the model); consumers are told to feed the model's own input")
    sample = args.sample_read
    model = load_model_file(args.model)
    extra = {} if args.min_agreement is None else {"min_agreement": args.min_agreement}
    manifests = export_model(model, args.out, _formats(args), intermediate=args.intermediate,
                             opset=args.opset, overwrite=args.force, tolerance=args.tolerance,
                             sample=sample, preprocessing=preprocessing,
                             optimize=args.optimize, quantize=args.quantize, **extra)
    for kind, manifest in manifests.items():
        parity = manifest.parity
        line = (f"wrote {os.path.join(args.out, kind)}: {len(manifest.outputs)} outputs, "
                f"parity max abs diff {parity['worst_diff']:.2e} at "
                f"{parity['worst_output']!r}")
        if parity.get("criterion") == "top1_agreement":
            agreement = parity["top1_agreement"]
            line += (f"; int8, {manifest.artifact['size_bytes'] / 1024:.0f} KiB, top-1 "
                     f"agreement {'n/a' if agreement is None else f'{agreement:.3f}'} "
                     f"(min {parity['min_agreement']:g}), logits drift "
                     f"{parity['logits_drift']:.2e}")
        else:
            line += f" (tolerance {parity['tolerance']:.0e})"
        optimization = manifest.artifact.get("optimization")
        if optimization:
            line += (f"; optimized: {optimization['nodes_before']} -> "
                     f"{optimization['nodes_after']} nodes, Transpose "
                     f"{optimization['transpose_before']} -> "
                     f"{optimization['transpose_after']}")
        print(line)
    return 0
