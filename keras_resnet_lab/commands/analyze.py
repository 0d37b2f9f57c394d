"""``keras-resnet-lab analyze``: run one of the papers' experiments on a saved model."""

from keras_resnet_lab.commands._common import add_run_arguments

EXPERIMENTS = ("lesion", "paths", "refinement", "similarity")
DATASETS = ("digits",)


def register(subparsers):
    parser = subparsers.add_parser(
        "analyze", help="lesion, path-gradient, refinement or similarity analysis of a model",
        description="Run one of the residual-network experiments on a .keras classifier of this "
                    "library: lesion (delete / reorder blocks, Veit et al. 1605.06431), paths "
                    "(gradient per path length, Veit et al.), refinement (cos(F(h), -dL/dh) "
                    "and ||F(h)||/||h|| per block, Jastrzebski et al. 1710.04773) or similarity "
                    "(linear CKA between blocks, Kornblith et al. 1905.00414), on the embedded "
                    "digits test split resized to the model's input. Writes EXPERIMENT.json "
                    "and EXPERIMENT.png into --out.")
    parser.add_argument("model", metavar="MODEL.keras", help="a saved Keras model file")
    parser.add_argument("--experiment", required=True, choices=EXPERIMENTS)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--data", choices=DATASETS, default="digits",
                        help="evaluation data: the embedded digits at the model's input size "
                             "(default)")
    parser.add_argument("--plain", metavar="PLAIN.keras", default=None,
                        help="lesion: the plain twin, studied the same way")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="use only this many test examples (default: all 360)")
    parser.add_argument("--draws", type=int, default=3,
                        help="lesion: random draws per number of deleted/swapped blocks "
                             "(default 3)")
    parser.add_argument("--samples-per-length", type=int, default=32,
                        help="paths: samples per path length (default 32; Veit et al. used "
                             "1000)")
    add_run_arguments(parser)
    parser.set_defaults(func=run)


def digits_for(model):
    """The embedded digits test split at ``model``'s input size, or a CliError saying why not."""
    from keras_resnet_lab.commands._common import CliError
    from keras_resnet_lab.data import DIGITS_NUM_CLASSES, load_digits

    shape = tuple(model.inputs[0].shape[1:])
    if (len(shape) != 3 or shape[0] is None or shape[0] != shape[1] or shape[0] < 8
            or shape[2] not in (1, 3)):
        raise CliError(f"model '{model.name}' takes inputs of shape {shape}; --data digits "
                       "needs square images of at least 8x8 pixels with 1 or 3 channels "
                       "(height, width, channels)")
    classes = int(model.outputs[0].shape[-1])
    if classes != DIGITS_NUM_CLASSES:
        raise CliError(f"model '{model.name}' predicts {classes} classes; --data digits has "
                       f"{DIGITS_NUM_CLASSES}")
    _, test = load_digits(image_size=int(shape[0]), channels=int(shape[2]))
    return test


def run(args):
    import os

    from keras_resnet_lab.commands._common import CliError, load_model_file, prepare_out_dir

    for name in ("max_examples", "draws", "samples_per_length"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CliError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.plain is not None and args.experiment != "lesion":
        raise CliError("--plain is used by --experiment lesion only")
    model = load_model_file(args.model)
    plain = load_model_file(args.plain) if args.plain else None
    x, y = digits_for(model)
    if args.max_examples:
        x, y = x[:args.max_examples], y[:args.max_examples]
    out = prepare_out_dir(args.out, force=args.force, marker="files")
    show = not args.quiet

    if args.experiment == "lesion":
        from keras_resnet_lab.analysis.lesion import lesion_study

        if plain is not None:
            digits_for(plain)
        result = lesion_study(model, (x, y), plain_model=plain, draws=args.draws,
                              seed=args.seed, progress=show)
        lines = [f"intact error {result.intact_error:.3f}; one block deleted: "
                 f"median error {_median(result.single_error):.3f}"]
        if result.plain is not None:
            lines.append(f"plain twin: intact {result.plain.intact_error:.3f}, one layer "
                         f"deleted: median {_median(result.plain.single_error):.3f}")
    elif args.experiment == "paths":
        from keras_resnet_lab.analysis.paths import path_gradients

        result = path_gradients(model, (x, y), args.samples_per_length, seed=args.seed,
                                progress_bar=show)
        lo, hi = result.effective_range
        lines = [f"{result.n_blocks} blocks: gradient x{result.decay_per_block:.2f} per extra "
                 f"branch; {result.effective_mass:.0%} of it from paths of length {lo}-{hi} "
                 f"({result.effective_path_share:.2%} of all paths)"]
    elif args.experiment == "refinement":
        from keras_resnet_lab.analysis.refinement import refinement

        result = refinement(model, (x, y), progress_bar=show)
        lines = ["block  cos(F,-grad)  ||F||/||h||  loss if dropped"] + [
            f"{n}  {c:+.3f}  {r:.3f}  {d:.3f}" for n, c, r, d in
            zip(result.block_names, result.cos_neg_grad, result.norm_ratio, result.drop_loss)]
    else:
        from keras_resnet_lab.analysis.similarity import block_similarity

        result = block_similarity(model, (x, y), progress_bar=show)
        lines = [f"linear CKA of consecutive blocks: within a stage {result.within_stage:.3f}, "
                 f"across stages {result.across_stages:.3f}"]
    for line in lines:
        print(line)
    for path in (result.to_json(os.path.join(out, f"{args.experiment}.json")),
                 result.plot(os.path.join(out, f"{args.experiment}.png"))):
        print(f"wrote {path}")
    return 0


def _median(values):
    import numpy as np

    return float(np.median(values))
