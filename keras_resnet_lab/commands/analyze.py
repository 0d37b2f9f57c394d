"""``keras-resnet-lab analyze``: run one of the papers' experiments on a saved model."""

from keras_resnet_lab.catalog import COMPARISONS
from keras_resnet_lab.commands._common import add_run_arguments, integer

#: Experiments on a saved model (MODEL.keras required).
MODEL_EXPERIMENTS = ("lesion", "paths", "refinement", "similarity", "estimation", "gates",
                     "filters", "norms")
#: Experiments that build their own networks (no MODEL.keras): the Hessian and the training
#: comparisons.
OWN_EXPERIMENTS = ("hessian",) + tuple(COMPARISONS)
EXPERIMENTS = MODEL_EXPERIMENTS + OWN_EXPERIMENTS
DATASETS = ("digits",)


def register(subparsers):
    parser = subparsers.add_parser(
        "analyze", help="the papers' experiments on a model (lesion, paths, refinement, ...)",
        description="Run one of the residual-network experiments on a .keras classifier of this "
                    "library, on the embedded digits test split resized to the model's input: "
                    "lesion (delete / reorder blocks, Veit et al. 1605.06431), paths "
                    "(gradient per path length, Veit et al.), refinement (cos(F(h), -dL/dh) "
                    "and ||F(h)||/||h|| per block, Jastrzebski et al. 1710.04773), similarity "
                    "(linear CKA between blocks, Kornblith et al. 1905.00414), estimation "
                    "(h_i - h_end of each stage, Greff et al. 1612.07771), gates (highway "
                    "transform gates and gate lesions, Srivastava et al. 1507.06228), filters "
                    "(same-channel similarity of consecutive blocks, Chu et al. 1701.02362; "
                    "with --plain, the twin too) or norms (||h_i||/||h_0|| through the blocks, "
                    "Szegedy et al. 1602.07261). Other experiments build their own networks and "
                    "take no MODEL: hessian (Hessian at zero init of linear nets with shortcuts "
                    "of 1, 2, 3 layers, Li et al. 1611.01186) and the training comparisons on "
                    "the 8x8 digits: " + "; ".join(
                        f"{name} ({entry.description})" for name, entry in COMPARISONS.items())
                    + ". Writes EXPERIMENT.json and EXPERIMENT.png into --out.")
    parser.add_argument("model", metavar="MODEL.keras", nargs="?", default=None,
                        help="a saved Keras model file (not for hessian and the training "
                             "comparisons)")
    parser.add_argument("--experiment", required=True, choices=EXPERIMENTS)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--data", choices=DATASETS, default="digits",
                        help="evaluation data: the embedded digits at the model's input size "
                             "(default)")
    parser.add_argument("--plain", metavar="PLAIN.keras", default=None,
                        help="lesion, filters: the plain twin, studied the same way")
    parser.add_argument("--max-examples", type=integer(1), default=None,
                        help="use only this many test examples (default: all 360)")
    parser.add_argument("--draws", type=integer(1), default=3,
                        help="lesion: random draws per number of deleted/swapped blocks "
                             "(default 3)")
    parser.add_argument("--samples-per-length", type=integer(1), default=32,
                        help="paths: samples per path length (default 32; Veit et al. used "
                             "1000)")
    parser.add_argument("--max-depth", type=integer(1), default=32,
                        help="hessian: largest depth in layers (default 32)")
    parser.add_argument("--epochs", type=integer(1), default=None,
                        help="training comparisons: epochs of every network (default: the "
                             "experiment's own)")
    parser.add_argument("--quick", action="store_true",
                        help="training comparisons: smaller networks and fewer epochs, a run "
                             "of seconds (the finding may not show at that size)")
    add_run_arguments(parser)
    parser.set_defaults(func=run, check=check)


def check(args):
    """Every argument error, before TensorFlow loads and before anything is written."""
    from keras_resnet_lab.commands._common import CliError, check_out, existing_model_file

    if args.plain is not None and args.experiment not in ("lesion", "filters"):
        raise CliError("--plain is used by --experiment lesion and filters only")
    if (args.epochs is not None or args.quick) and args.experiment not in COMPARISONS:
        raise CliError("--epochs and --quick are used by the training comparisons only: "
                       + ", ".join(COMPARISONS))
    if args.experiment in OWN_EXPERIMENTS:
        if args.model is not None:
            raise CliError(f"--experiment {args.experiment} builds its own networks: give no "
                           "MODEL.keras")
    else:
        if args.model is None:
            raise CliError(f"--experiment {args.experiment} needs a MODEL.keras file")
        existing_model_file(args.model)
        if args.plain is not None:
            existing_model_file(args.plain, "--plain")
    check_out(args, reuse=args.force)


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
    from keras_resnet_lab.commands._common import load_model_file, out_folder

    if args.experiment in OWN_EXPERIMENTS:
        with out_folder(args, "analyze", reuse=args.force) as out:
            result, lines = _own_experiment(args)
            return _finish(args, out, result, lines)
    model = load_model_file(args.model)
    plain = load_model_file(args.plain) if args.plain else None
    x, y = digits_for(model)
    if plain is not None:
        digits_for(plain)
    if args.max_examples:
        x, y = x[:args.max_examples], y[:args.max_examples]
    with out_folder(args, "analyze", reuse=args.force) as out:
        result, lines = _model_experiment(args, model, plain, (x, y))
        return _finish(args, out, result, lines)


def _model_experiment(args, model, plain, data):
    """The experiments on a saved model: ``(result, summary lines)``."""
    x, y = data
    show = not args.quiet
    if args.experiment == "lesion":
        from keras_resnet_lab.analysis.lesion import lesion_study

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
    elif args.experiment == "similarity":
        from keras_resnet_lab.analysis.similarity import block_similarity

        result = block_similarity(model, (x, y), progress_bar=show)
        lines = [f"linear CKA of consecutive blocks: within a stage {result.within_stage:.3f}, "
                 f"across stages {result.across_stages:.3f}"]
    elif args.experiment == "estimation":
        from keras_resnet_lab.analysis.estimation import estimation_errors

        result = estimation_errors(model, (x, y), progress_bar=show)
        lines = ["block  mean/rms(h_end)  std/rms(h_end)"] + [
            f"{n}  {m:+.3f}  {sd:.3f}" for n, m, sd, ok in
            zip(result.block_names, result.normalized_mean, result.normalized_std,
                result.measured) if ok]
    elif args.experiment == "gates":
        from keras_resnet_lab.analysis.gates import gate_statistics

        result = gate_statistics(model, (x, y), progress_bar=show)
        lines = ["layer  mean T  accuracy with T=0"] + [
            f"{n}  {t:.3f}  {a:.3f}" for n, t, a in
            zip(result.block_names, result.mean_gate, result.lesion_accuracy)]
    elif args.experiment == "filters":
        from keras_resnet_lab.analysis.filter_refinement import filter_refinement

        result = filter_refinement(model, (x, y), twin=plain, seed=args.seed,
                                   progress_bar=show)
        lines = [f"same channel at consecutive blocks: {result.same_channel_mean:.3f}, random "
                 f"channel pairs: {result.random_pair_mean:.3f} (score {result.score:+.3f})"]
        if plain is not None:
            lines.append(f"plain twin: score {result.twin_score:+.3f}")
    else:
        from keras_resnet_lab.analysis.norms import norm_growth

        result = norm_growth(model, x, progress_bar=show)
        lines = [f"||h_L|| / ||h_0|| = {result.final_ratio:.3f} over {len(result.ratio) - 1} "
                 "blocks (moving batch-norm statistics)"]
    return result, lines


def _own_experiment(args):
    """The experiments that build their own networks: ``(result, summary lines)``."""
    show = not args.quiet
    if args.experiment == "hessian":
        from keras_resnet_lab.analysis.hessian import zero_init_hessian

        result = zero_init_hessian(max_depth=args.max_depth, seed=args.seed,
                                   progress_bar=show)
        lines = ["shortcut  condition number at depths " + ", ".join(
            str(d) for d in result.depths[str(result.shortcuts[0])])]
        for n in result.shortcuts:
            values = result.condition[str(n)]
            lines.append(f"n={n}  " + ", ".join(
                "-" if v is None else f"{v:.3g}" for v in values)
                + f"  (largest |eigenvalue| {max(result.max_abs_eigenvalue[str(n)]):.3g})")
        return result, lines
    from keras_resnet_lab.analysis.comparisons import run_comparison

    result = run_comparison(args.experiment, seed=args.seed, epochs=args.epochs,
                            smoke=args.quick, progress_bar=show)
    if args.experiment == "multires":
        lines = [f"{c['n_blocks']} blocks with k = {c['branches']}: {c['params']:,} "
                 f"parameters, test accuracy {acc:.3f}"
                 for c, acc in zip(result.configs, result.mean_accuracy)]
        return result, lines
    lines = [result.describe()] + [
        f"  [{'ok' if c['held'] else 'NO'}] {c['name']}: {_number(c['value'])} "
        f"{c['comparison']} {c['threshold']}" for c in result.criteria()]
    lines.append(f"finding held: {'yes' if result.finding_held else 'no'}")
    return result, lines


def _finish(args, out, result, lines):
    import os

    for line in lines:
        print(line)
    for path in (result.to_json(os.path.join(out, f"{args.experiment}.json")),
                 result.plot(os.path.join(out, f"{args.experiment}.png"))):
        print(f"wrote {path}")
    return 0


def _number(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _median(values):
    import numpy as np

    return float(np.median(values))
