"""``keras-resnet-lab export``: SavedModel and/or ONNX artifacts with every block's output."""

import json
import os

from keras_resnet_lab.commands._common import integer, number

FORMAT_CHOICES = ("savedmodel", "onnx", "both")


def register(subparsers):
    """Add the ``export`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "export", help="write SavedModel / ONNX artifacts with every block's output",
        description="Export a .keras model as a SavedModel (signatures 'serve' and 'features') "
                    "and/or an ONNX file whose graph outputs are 'stem', every block "
                    "('stage1_block1', ...) and 'output'. Each artifact is checked against the "
                    "Keras model on a batch before it is renamed into place, and carries a "
                    "manifest.json. Writes OUT/savedmodel and/or OUT/onnx.")
    parser.add_argument("model", metavar="MODEL.keras", help="a saved Keras model file")
    parser.add_argument("--format", choices=FORMAT_CHOICES, default="both",
                        help="which artifacts to write (default: both)")
    parser.add_argument("--out", required=True, help="folder to write savedmodel/ and onnx/ into")
    parser.add_argument("--no-intermediate", dest="intermediate", action="store_false",
                        help="ONNX: output only the model's output, not the stem and blocks")
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
                             "normal batch of 8)")
    parser.add_argument("--preprocessing", metavar="JSON", default=None,
                        help="how an image becomes the input, recorded in the manifest: a JSON "
                             "object or file with keys description, scale, mean, std, color "
                             "(x = (pixels * scale - mean) / std)")
    parser.set_defaults(func=run, check=check)


def check(args):
    """Every argument error, before TensorFlow loads and before anything is written."""
    from keras_resnet_lab.commands._common import existing_model_file
    from keras_resnet_lab.outdir import check_target

    existing_model_file(args.model)
    _preprocessing(args.preprocessing)
    _sample(args.sample)
    for kind in _formats(args):
        check_target(os.path.join(args.out, kind), args.force)


def _formats(args):
    return ("savedmodel", "onnx") if args.format == "both" else (args.format,)


def _preprocessing(text):
    from keras_resnet_lab.commands._common import CliError

    if text is None:
        return None
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
    return value


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

    preprocessing = _preprocessing(args.preprocessing)
    sample = _sample(args.sample)
    model = load_model_file(args.model)
    manifests = export_model(model, args.out, _formats(args), intermediate=args.intermediate,
                             opset=args.opset, overwrite=args.force, tolerance=args.tolerance,
                             sample=sample, preprocessing=preprocessing)
    for kind, manifest in manifests.items():
        parity = manifest.parity
        print(f"wrote {os.path.join(args.out, kind)}: {len(manifest.outputs)} outputs, parity "
              f"max abs diff {parity['worst_diff']:.2e} at {parity['worst_output']!r} "
              f"(tolerance {parity['tolerance']:.0e})")
    return 0
