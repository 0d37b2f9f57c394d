"""``keras-resnet-lab analyze``: one of the papers' experiments, and the verdicts of the findings
it tests (each by its rule in ``keras_resnet_lab.findings``, with a 95% interval)."""

from keras_resnet_lab.catalog import COMPARISONS
from keras_resnet_lab.commands._common import add_run_arguments, integer

#: Experiments on a saved model (MODEL.keras required) -> the findings they test.
MODEL_EXPERIMENTS = {
    "lesion": ("veit_lesion, veit_k_deletion, veit_reorder (with --plain: a plain "
               "network that trains)"),
    "paths": "veit_path_gradient",
    "refinement": "jastrzebski_refinement, jastrzebski_first_block",
    "similarity": "kornblith_cka (with --plain)",
    "estimation": "greff_estimation",
    "filters": "chu_filters (with --plain for the twin)",
    "gates": "none: descriptive (srivastava_gates needs the gates at initialization: "
             "--experiment highway)",
    "norms": "none: descriptive",
}
#: Experiments that build their own networks (no MODEL.keras), run over seeds.
OWN_EXPERIMENTS = tuple(COMPARISONS)
EXPERIMENTS = tuple(MODEL_EXPERIMENTS) + OWN_EXPERIMENTS
#: The ones that train (take --epochs).
TRAINING = tuple(name for name, entry in COMPARISONS.items() if entry.channels)
DATASETS = ("digits",)
#: The experiments that use --plain.
WITH_TWIN = ("lesion", "filters", "similarity")


def register(subparsers):
    experiments = "\n".join(f"  {name:12s} {findings}"
                            for name, findings in MODEL_EXPERIMENTS.items())
    own = "\n".join(f"  {name:12s} {entry.description}" for name, entry in COMPARISONS.items())
    parser = subparsers.add_parser(
        "analyze", help="one of the papers' experiments, and its findings' verdicts",
        description="Run one of the residual-network experiments and judge the findings it "
                    "tests, each by its rule in keras_resnet_lab.findings (95% interval, "
                    "verdict held / not held / inconclusive).\n\nOn a .keras classifier of "
                    "this library, on the embedded digits test split at the model's input "
                    "size (bootstrap intervals over the test examples):\n" + experiments
                    + "\n\nWithout a model, over --seeds seeds (each trains its own networks "
                    "or draws its own task):\n" + own + "\n\nWrites EXPERIMENT.json, "
                    "EXPERIMENT.png and findings.json into --out.")
    parser.add_argument("model", metavar="MODEL.keras", nargs="?", default=None,
                        help="a saved Keras model file (for the experiments on a model)")
    parser.add_argument("--experiment", required=True, choices=EXPERIMENTS)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--data", choices=DATASETS, default="digits",
                        help="evaluation data: the embedded digits at the model's input size "
                             "(default)")
    parser.add_argument("--plain", metavar="PLAIN.keras", default=None,
                        help="filters, similarity: the plain twin, studied alike; lesion: a "
                             "plain network on the same images that trains (the twin, or a "
                             "shallower one as Veit et al.'s VGG-15 against ResNet-110)")
    parser.add_argument("--max-examples", type=integer(1), default=None,
                        help="use only this many test examples (default: all 360)")
    parser.add_argument("--draws", type=integer(1), default=20,
                        help="lesion: random draws per number of deleted blocks and per "
                             "number of swaps (default 20)")
    parser.add_argument("--samples-per-length", type=integer(1), default=32,
                        help="paths: samples per path length (default 32; Veit et al. used "
                             "1000)")
    parser.add_argument("--seeds", type=integer(1), default=3,
                        help="experiments without a model: how many seeds, from --seed on "
                             "(default 3; an interval needs 2, a decisive one usually 3+)")
    parser.add_argument("--processes", type=integer(1), default=1,
                        help="experiments without a model: worker processes for the seeds "
                             "(default 1)")
    parser.add_argument("--epochs", type=integer(1), default=None,
                        help="training experiments: epochs of every network (default: the "
                             "experiment's own)")
    parser.add_argument("--quick", action="store_true",
                        help="experiments without a model: their smoke settings, seconds per "
                             "seed (the findings need not show at that size)")
    add_run_arguments(parser)
    parser.set_defaults(func=run, check=check)


def check(args):
    """Every argument error, before TensorFlow loads and before anything is written."""
    from keras_resnet_lab.commands._common import CliError, check_out, existing_model_file

    if args.plain is not None and args.experiment not in WITH_TWIN:
        raise CliError(f"--plain is used by --experiment {', '.join(WITH_TWIN)} only")
    if args.epochs is not None and args.experiment not in TRAINING:
        raise CliError("--epochs is used by the training experiments only: "
                       + ", ".join(TRAINING))
    if args.quick and args.experiment not in OWN_EXPERIMENTS:
        raise CliError("--quick is used by the experiments without a model only: "
                       + ", ".join(OWN_EXPERIMENTS))
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
            return _finish(args, out, *_own_experiment(args))
    model = load_model_file(args.model)
    plain = load_model_file(args.plain) if args.plain else None
    x, y = digits_for(model)
    if plain is not None:
        digits_for(plain)
    if args.max_examples:
        x, y = x[:args.max_examples], y[:args.max_examples]
    with out_folder(args, "analyze", reuse=args.force) as out:
        return _finish(args, out, *_model_experiment(args, model, plain, (x, y)))


def _model_experiment(args, model, plain, data):
    """An experiment on a saved model: ``(result, assessments, summary lines)``."""
    x, _ = data
    show = not args.quiet
    if args.experiment == "lesion":
        from keras_resnet_lab.analysis.lesion import lesion_study

        result = lesion_study(model, data, plain_model=plain, draws=args.draws, seed=args.seed,
                              progress_bar=show)
        lines = [f"intact error {result.intact_error:.3f}; one block deleted: error from "
                 f"{min(result.single_error):.3f} to {max(result.single_error):.3f}"]
        return result, result.assessments(seed=args.seed), lines
    if args.experiment == "paths":
        from keras_resnet_lab.analysis.paths import path_gradients

        result = path_gradients(model, data, args.samples_per_length, seed=args.seed,
                                progress_bar=show)
        lo, hi = result.effective_range
        lines = [f"{result.n_blocks} blocks; {result.effective_mass:.0%} of the gradient from "
                 f"paths of length {lo}-{hi} ({result.effective_path_share:.2%} of all paths)"]
        return result, result.assessments(seed=args.seed), lines
    if args.experiment == "refinement":
        from keras_resnet_lab.analysis.refinement import refinement

        result = refinement(model, data, progress_bar=show)
        lines = ["block  cos(F,-grad)  ||F||/||h||  loss if dropped"] + [
            f"{n}  {c:+.3f}  {r:.3f}  {d:.3f}" for n, c, r, d in
            zip(result.block_names, result.cos_neg_grad, result.norm_ratio, result.drop_loss)]
        return result, result.assessments(seed=args.seed), lines
    if args.experiment == "similarity":
        from keras_resnet_lab.analysis.similarity import block_similarity, cka_assessment

        result = block_similarity(model, data, progress_bar=show)
        lines = [f"linear CKA of consecutive blocks: within a stage {result.within_stage:.3f}, "
                 f"across stages {result.across_stages:.3f}"]
        found = []
        if plain is not None:
            twin = block_similarity(plain, data, progress_bar=show)
            lines.append(f"plain twin: within a stage {twin.within_stage:.3f}")
            found = [cka_assessment(result, twin, seed=args.seed)]
        return result, found, lines
    if args.experiment == "estimation":
        from keras_resnet_lab.analysis.estimation import estimation_errors

        result = estimation_errors(model, data, progress_bar=show)
        lines = ["block  mean/rms(h_end)  std/rms(h_end)"] + [
            f"{n}  {m:+.3f}  {sd:.3f}" for n, m, sd, ok in
            zip(result.block_names, result.normalized_mean, result.normalized_std,
                result.measured) if ok]
        return result, result.assessments(seed=args.seed), lines
    if args.experiment == "gates":
        from keras_resnet_lab.analysis.gates import gate_statistics

        result = gate_statistics(model, data, progress_bar=show)
        lines = ["layer  mean T  accuracy with T=0"] + [
            f"{n}  {t:.3f}  {a:.3f}" for n, t, a in
            zip(result.block_names, result.mean_gate, result.lesion_accuracy)]
        return result, [], lines
    if args.experiment == "filters":
        from keras_resnet_lab.analysis.filter_refinement import filter_refinement

        result = filter_refinement(model, data, twin=plain, seed=args.seed,
                                   progress_bar=show)
        lines = [f"same channel at consecutive blocks: {result.same_channel_mean:.3f}, random "
                 f"channel pairs: {result.random_pair_mean:.3f} (score {result.score:+.3f})"]
        return result, result.assessments(seed=args.seed), lines
    from keras_resnet_lab.analysis.norms import norm_growth

    result = norm_growth(model, x, progress_bar=show)
    return result, [], [f"||h_L|| / ||h_0|| = {result.final_ratio:.3f} over "
                        f"{len(result.ratio) - 1} blocks (moving batch-norm statistics)"]


def _own_experiment(args):
    """An experiment without a model, over seeds: ``(result, assessments, summary lines)``."""
    from keras_resnet_lab.analysis.comparisons import run_comparison

    seeds = tuple(range(args.seed, args.seed + args.seeds))
    result = run_comparison(args.experiment, seeds=seeds, epochs=args.epochs,
                            smoke=args.quick, progress_bar=not args.quiet,
                            processes=args.processes)
    lines = [f"{args.experiment}: {COMPARISONS[args.experiment].description}, seeds "
             f"{', '.join(map(str, seeds))}"]
    return result, result.assessments(), lines


def _finish(args, out, result, assessments, lines):
    import os

    from keras_resnet_lab.analysis.results import atomic_write_json
    from keras_resnet_lab.findings import tally

    for line in lines:
        print(line)
    for a in assessments:
        print(f"\n{a.key}: {a.verdict}\n{a.describe()}")
    if not assessments:
        print(f"(--experiment {args.experiment}: {MODEL_EXPERIMENTS.get(args.experiment)})")
    paths = [result.to_json(os.path.join(out, f"{args.experiment}.json")),
             result.plot(os.path.join(out, f"{args.experiment}.png"))]
    if assessments:
        paths.append(atomic_write_json(
            {"findings": [a.to_dict() for a in assessments],
             "tally": tally(a.verdict for a in assessments)},
            os.path.join(out, "findings.json")))
    for path in paths:
        print(f"wrote {path}")
    return 0
