"""``keras-resnet-lab train``: train a named model on a dataset, resumably.

Scale and speed options:

- ``--strategy mirrored``: every local GPU holds a replica (``tf.distribute.MirroredStrategy``);
  ``--batch-size`` is the global batch.
- ``--workers N``: N worker processes on this machine train one model together with
  ``tf.distribute.MultiWorkerMirroredStrategy`` (each gets a ``TF_CONFIG`` for free ports on
  127.0.0.1; worker 0 writes ``--out``, the others ``--out/.workers/worker-<i>`` and log to
  ``--out/.workers/worker-<i>.log``). On a real cluster, set ``TF_CONFIG`` on each machine
  and run the same command with ``--strategy multiworker`` on each (see
  ``keras_resnet_lab.training.strategy``).
- ``--mixed-precision [float16|bfloat16]``: build the model under ``mixed_float16`` (default;
  GPUs with tensor cores) or ``mixed_bfloat16`` with float32 logits.
- ``--xla``: compile the train step with XLA (``jit_compile=True``).
"""

import dataclasses
import json
import os
import sys

from keras_resnet_lab.catalog import DATASETS, MODEL_OPTIONS, check_model_options, model_base
from keras_resnet_lab.commands._common import CliError, integer, number

DEFAULT_EPOCHS = 15
DEFAULT_MODEL = "resnet20"


@dataclasses.dataclass(frozen=True)
class Flag:
    """One option of ``train``, and every use of it: how it is read (``options``: the keyword
    arguments of ``add_argument``), where ``--help`` lists it, and whether it defines the run
    (``run``: recorded in run.json, a resume must repeat it), is passed on to each worker of
    ``--workers`` (``worker``), defines the model (``model``: refused with ``--resume
    MODEL.keras``) or is the builder keyword ``option`` of a model option."""

    flag: str
    options: dict
    run: bool = False
    worker: bool = True
    model: bool = False
    option: str | None = None

    @property
    def dest(self):
        """The attribute of the parsed arguments."""
        return self.flag[2:].replace("-", "_")

    def given(self, args):
        """The flag's value in ``args``, or None where it was not given (an unset switch)."""
        value = getattr(args, self.dest)
        return None if value is False else value


def _model_option(option, **options):
    """The flag of the model option ``option`` (its name from ``catalog.MODEL_OPTIONS``)."""
    return Flag(MODEL_OPTIONS[option][0], options, run=True, model=True, option=option)


#: Every flag of ``train``, in ``--help`` order (:data:`MODEL_FLAGS` in their own section).
FLAGS = (
    Flag("--model", dict(default=None,
                         help="model name, e.g. resnet20, resnet56v2, resnet18, wrn16_4, highway "
                              "(default: resnet20)"), run=True, model=True),
    Flag("--resume", dict(nargs="?", const=True, default=None, metavar="MODEL.keras",
                          help="without a value: continue the interrupted run in --out (an error "
                               "if there is none; a plain start with the same --out resumes "
                               "too). With a .keras file: train that model further (its "
                               "architecture and weights; --model and the model options must "
                               "not be given)"), run=True),
    Flag("--plain", dict(action="store_true",
                         help="train the plain twin (same layers, no shortcuts)"),
         run=True, model=True),
    Flag("--dataset", dict(default="digits", choices=DATASETS,
                           help="digits (embedded, offline) or a prepared tensorflow-datasets "
                                "dataset"), run=True),
    Flag("--data-dir", dict(default=None, help="tensorflow-datasets data folder")),
    Flag("--image-size", dict(type=integer(8), default=None,
                              help="input side in pixels (default: the dataset's)"), run=True),
    Flag("--epochs", dict(type=integer(1), default=DEFAULT_EPOCHS,
                          help="epochs of the run (resumed ones included)")),
    Flag("--batch-size", dict(type=integer(1), default=128, help="global batch size"),
         run=True),
    Flag("--recipe", dict(choices=("he", "general"), default="he",
                          help="he: SGD 0.9, lr 0.1 /10 at 50%% and 75%%, wd 1e-4 (He et al.); "
                               "general: AdamW with warm-up and cosine decay"), run=True),
    Flag("--lr", dict(type=number(0, low_open=True), default=None,
                      help="base learning rate (default: the recipe's)"), run=True),
    # The workers of --workers run with --strategy multiworker (and without these three).
    Flag("--strategy", dict(default=None, choices=("default", "mirrored", "multiworker"),
                            help="tf.distribute strategy: default, mirrored (all local GPUs) or "
                                 "multiworker (reads TF_CONFIG: run the same command on every "
                                 "machine of the cluster)"), worker=False),
    Flag("--workers", dict(type=integer(1), default=None,
                           help="train with N local worker processes "
                                "(MultiWorkerMirroredStrategy on 127.0.0.1); worker 0 writes "
                                "--out"), worker=False),
    Flag("--worker-timeout", dict(type=number(0, low_open=True), default=None,
                                  help="with --workers: stop every worker after this many "
                                       "seconds"), worker=False),
    Flag("--mixed-precision", dict(nargs="?", const="float16", default=None,
                                   choices=("float16", "bfloat16"),
                                   help="mixed precision: float16 (default when given; GPUs) or "
                                        "bfloat16 (TPUs, CPUs with AMX/AVX512-BF16); logits "
                                        "stay float32"), run=True),
    Flag("--xla", dict(action="store_true",
                       help="compile the training step with XLA (jit_compile=True)")),
)
#: The model options (README: Model options), a section of their own in ``--help``.
MODEL_FLAGS = (
    _model_option("drop_path_rate", type=number(0, 1, high_open=True), default=None,
                  metavar="RATE",
                  help="stochastic depth: drop-path rate growing linearly to RATE"),
    _model_option("learnable_scale", action="store_true",
                  help="ReZero: each branch times a learned alpha starting at 0"),
    _model_option("zero_init_residual", action="store_true",
                  help="last batch-norm gamma of each branch starts at 0"),
    _model_option("se_ratio", type=number(0, 1, low_open=True), default=None,
                  help="squeeze-and-excitation ratio (e.g. 0.25)"),
    _model_option("avg_down", action="store_true",
                  help="ResNet-D shortcut: average-pool, then 1x1 projection"),
    _model_option("stem", choices=("classic", "deep"), default=None,
                  help="ImageNet ResNets: deep stem of three 3x3 convolutions (ResNet-C/D)"),
    _model_option("output_stride", type=int, choices=(8, 16, 32), default=None,
                  help="ImageNet ResNets: dilate the last stages instead of striding"),
)
#: After the model options in ``--help``.
LAST_FLAGS = (
    Flag("--seed", dict(type=integer(0), default=0, help="seed of everything random"),
         run=True),
    Flag("--out", dict(required=True, help="output folder")),
    Flag("--force", dict(action="store_true",
                         help="start over in an --out that already holds a finished run")),
    Flag("--quiet", dict(action="store_true", help="one line per epoch, no bar")),
)
ALL_FLAGS = FLAGS + MODEL_FLAGS + LAST_FLAGS

#: The arguments that define what a run trains: a resumed run must repeat them.
RUN_ARGUMENTS = tuple(f.dest for f in ALL_FLAGS if f.run)
RUN_FILE = "run.json"


def register(subparsers):
    parser = subparsers.add_parser(
        "train", help="train a residual network (or its plain twin) on a dataset",
        description="Train a model by name on the embedded digits (offline) or a prepared "
                    "tensorflow-datasets dataset. Writes model.keras, history.json, curves.png "
                    "and results.json into --out. A run killed mid-way resumes from its last "
                    "finished epoch when started again with the same --out.")
    for flag in FLAGS:
        parser.add_argument(flag.flag, **flag.options)
    options = parser.add_argument_group(
        "model options", "variants of the blocks and builders (README: Model options)")
    for flag in MODEL_FLAGS:
        options.add_argument(flag.flag, **flag.options)
    for flag in LAST_FLAGS:
        parser.add_argument(flag.flag, **flag.options)
    parser.set_defaults(func=run, check=check)


def model_options(args):
    """The builder keyword arguments of the ``model options`` flags that were given."""
    return {f.option: f.given(args) for f in MODEL_FLAGS if f.given(args) is not None}


def _worker_argv(args):
    """The ``train`` arguments one worker of ``--workers`` runs (same run, multiworker)."""
    argv = ["train", "--strategy", "multiworker"]
    for flag in ALL_FLAGS:
        value = flag.given(args) if flag.worker else None
        if value is True:  # a switch, or --resume without a file
            argv.append(flag.flag)
        elif value is not None:
            argv += [flag.flag, str(value)]
    return argv


def _files(out):
    """Which files of a run ``out`` holds: ``{"model", "backup", "results", "run"}`` -> bool."""
    return {"model": os.path.isfile(os.path.join(out, "model.keras")),
            "backup": os.path.isdir(os.path.join(out, "backup")),
            "results": os.path.isfile(os.path.join(out, "results.json")),
            "run": os.path.isfile(os.path.join(out, RUN_FILE))}


def _trained_unfinished(out):
    """A run killed after model.keras was written and its backup removed, before its
    results.json: resuming writes the results without training again."""
    files = _files(out)
    return files["model"] and files["run"] and not (files["backup"] or files["results"])


def check(args):
    """Every argument error, before TensorFlow loads and before anything is written."""
    from keras_resnet_lab.commands._common import check_out, existing_model_file

    if args.resume is not None and args.force:
        raise CliError("--resume continues training and --force starts over: give one of them")
    options = model_options(args)
    if isinstance(args.resume, str):
        given = [f.flag for f in ALL_FLAGS if f.model and f.given(args) is not None]
        if given:
            raise CliError(f"--resume {args.resume} trains the model saved in that file: "
                           f"{', '.join(given)} cannot change it")
        existing_model_file(args.resume, "--resume")
    else:
        try:
            model_base(args.model or DEFAULT_MODEL)
        except ValueError as error:
            raise CliError(f"--model: {error}") from None
        check_model_options(args.model or DEFAULT_MODEL, options)
    if args.workers is not None:
        if args.strategy not in (None, "multiworker"):
            raise CliError(f"--workers trains with --strategy multiworker, got --strategy "
                           f"{args.strategy}")
        if os.environ.get("TF_CONFIG"):
            raise CliError("--workers starts its own cluster but TF_CONFIG is already set; "
                           "unset it, or run with --strategy multiworker on each machine "
                           "instead")
    elif args.worker_timeout is not None:
        raise CliError("--worker-timeout is used with --workers only")
    files = _files(args.out) if os.path.isdir(args.out) else {}
    if args.resume is True and not (files.get("backup") or _trained_unfinished(args.out)):
        raise CliError(f"--resume: --out {args.out} holds no interrupted run to continue "
                       "(no backup/ folder; a finished run has none). Give --resume "
                       "MODEL.keras to train a saved model further")
    if files.get("model") and not files.get("backup") and files.get("results") \
            and not args.force:
        raise CliError(f"--out {args.out} already holds a finished run; pass --force to train "
                       "again from scratch")
    check_out(args, reuse=True)


def _launch_workers(args):
    from keras_resnet_lab.commands._common import out_folder
    from keras_resnet_lab.outdir import inherit_locks_env
    from keras_resnet_lab.training.strategy import launch_local_workers

    with out_folder(args, "train", reuse=True):
        command = [sys.executable, "-m", "keras_resnet_lab_cli", *_worker_argv(args)]
        log_dir = os.path.join(args.out, ".workers")
        print(f"launching {args.workers} workers (MultiWorkerMirroredStrategy on 127.0.0.1); "
              f"logs of workers 1+ in {log_dir}", flush=True)
        # The workers import this very package, wherever it was imported from, and write
        # into --out under this process's lock.
        import keras_resnet_lab

        root = os.path.dirname(os.path.dirname(os.path.abspath(keras_resnet_lab.__file__)))
        env = inherit_locks_env()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        codes = launch_local_workers(command, args.workers, log_dir=log_dir, env=env,
                                     timeout=args.worker_timeout)
    if any(codes):
        raise CliError(f"multi-worker training failed: exit codes {codes} (worker 0 first; "
                       f"see {log_dir}/worker-<i>.log)")
    return 0


def _record_run(args, resuming, chief):
    """Write the run's defining arguments to ``--out/run.json``; when resuming, refuse
    arguments that differ from the interrupted run's (its backup would not fit them)."""
    from keras_resnet_lab.atomic import atomic_write_text

    current = {k: getattr(args, k) for k in RUN_ARGUMENTS}
    current["resume"] = current["resume"] if isinstance(current["resume"], str) else None
    if current["resume"] is None:
        current["model"] = current["model"] or DEFAULT_MODEL
    path = os.path.join(args.out, RUN_FILE)
    if resuming and os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                recorded = json.load(f)
        except (OSError, ValueError):
            recorded = None
        if isinstance(recorded, dict):
            differ = [k for k in RUN_ARGUMENTS if k in recorded and recorded[k] != current[k]]
            if differ:
                was = ", ".join(f"--{k.replace('_', '-')}={recorded[k]!r}" for k in differ)
                raise CliError(f"--out {args.out} holds an interrupted run started with {was}; "
                               "repeat its arguments to resume it, or pass --force to start "
                               "over")
    if chief:
        atomic_write_text(json.dumps(current, indent=2) + "\n", path)


def run(args):
    if args.workers is not None:
        return _launch_workers(args)
    from keras_resnet_lab.training.strategy import get_strategy, is_chief

    # First, before any TensorFlow op: a multi-worker strategy configures the runtime's
    # collective ops, which must happen before TensorFlow initializes its devices.
    strategy = get_strategy(args.strategy)
    plan = _plan(args)  # every dataset and recipe error, before --out is touched
    if not is_chief(strategy):  # writes into --out/.workers/<task> under its own lock
        resuming = os.path.isdir(os.path.join(args.out, "backup")) and not args.force
        return _train(args, strategy, resuming, *plan)
    from keras_resnet_lab.commands._common import out_folder

    with out_folder(args, "train", reuse=True):
        resuming = not args.force and (os.path.isdir(os.path.join(args.out, "backup"))
                                       or _trained_unfinished(args.out))
        _record_run(args, resuming, chief=True)
        return _train(args, strategy, resuming, *plan)


def _plan(args):
    """``(dataset info, train data, test data, recipe)`` of the run."""
    from keras_resnet_lab.data import dataset_info, load_dataset
    from keras_resnet_lab.training import general_recipe, he_cifar_recipe

    info = dataset_info(args.dataset, image_size=args.image_size)

    def data(split):
        return load_dataset(args.dataset, split=split, batch_size=args.batch_size,
                            data_dir=args.data_dir, image_size=args.image_size,
                            seed=args.seed)

    make = he_cifar_recipe if args.recipe == "he" else general_recipe
    recipe = make(**({} if args.lr is None else {"base_lr": args.lr}))
    if isinstance(args.resume, str):
        _saved_model(args.resume, info)  # loads and fits the dataset, or one error line
    return info, data(info.train_split), data(info.test_split), recipe


def _train(args, strategy, resuming, info, train_ds, test_ds, recipe):
    """Train (or finish) the run of ``args`` into ``--out`` and write its results.json."""
    import keras

    from keras_resnet_lab.models import build_model
    from keras_resnet_lab.training import fit

    def model_fn():
        keras.utils.set_random_seed(args.seed)
        if isinstance(args.resume, str):
            return _saved_model(args.resume, info)
        return build_model(args.model or DEFAULT_MODEL, plain=args.plain,
                           input_shape=info.input_shape, num_classes=info.num_classes,
                           **model_options(args))

    if resuming and _trained_unfinished(args.out):
        from keras_resnet_lab.commands._common import load_model_file

        print(f"finishing the run in {args.out}: its model is trained, writing its results")
        model = load_model_file(os.path.join(args.out, "model.keras"))
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        _write_results(args, model, recipe, test_ds, args.out, model.dtype_policy.name, 1)
        return 0
    if resuming:
        print(f"resuming the run in {args.out}")
    elif isinstance(args.resume, str):
        print(f"training {args.resume} further")
    result = fit(model_fn, train_ds, args.epochs, recipe, args.out, validation_data=test_ds,
                 strategy=strategy, resume=not args.force, seed=args.seed,
                 verbose=2 if args.quiet else 1, precision=args.mixed_precision,
                 jit_compile=True if args.xla else "auto", keep_backup=True)
    if result.terminated:
        kept = (f"the last good epoch is kept in {result.backup_path}; fix the cause (e.g. "
                "--lr) and run the same command to resume from it"
                if os.path.isdir(result.backup_path) else
                "no epoch ended with a finite loss, so there is nothing to resume; try a "
                "lower --lr")
        raise CliError(f"training stopped: {result.terminated}; {kept}")
    # Under multi-worker training result.out_dir is --out for the chief and
    # --out/.workers/<task> for the other workers.
    _write_results(args, result.model, recipe, test_ds, result.out_dir, result.precision,
                   result.num_replicas)
    result.discard_backup()  # last: until now a kill leaves the backup to finish from
    return 0


def _write_results(args, model, recipe, test_ds, out, precision, replicas):
    from keras_resnet_lab.atomic import atomic_write_json

    loss, accuracy = model.evaluate(test_ds, verbose=0)[:2]
    summary = {"model": model.name, "dataset": args.dataset, "epochs": args.epochs,
               "recipe": recipe.to_dict(), "test_loss": float(loss),
               "test_accuracy": float(accuracy), "parameters": int(model.count_params()),
               "precision": precision, "xla": bool(args.xla), "replicas": replicas}
    atomic_write_json(summary, os.path.join(out, "results.json"))
    _write_preprocessing(args, model, out)
    print(json.dumps({k: summary[k] for k in ("model", "dataset", "test_accuracy")}))


def _write_preprocessing(args, model, out):
    """Record beside model.keras how an image becomes the model's input (the dataset's
    normalization at the trained size): ``export`` puts it in every artifact's manifest."""
    from keras_resnet_lab.data import dataset_preprocessing, write_preprocessing

    size = model.inputs[0].shape[1]
    write_preprocessing(out, dataset_preprocessing(
        args.dataset, args.image_size if size is None else int(size)))


def _saved_model(path, info):
    """The model of ``--resume MODEL.keras``, checked against the dataset's shapes."""
    from keras_resnet_lab.commands._common import load_model_file

    model = load_model_file(path)
    expected = tuple(info.input_shape)
    got = tuple(model.inputs[0].shape[1:])
    if len(got) != len(expected) or any(g is not None and g != e for g, e in zip(got, expected)):
        raise CliError(f"--resume {path}: the model takes inputs of shape {got}, the dataset "
                       f"gives {expected} (set --image-size to match)")
    classes = int(model.outputs[0].shape[-1])
    if classes != info.num_classes:
        raise CliError(f"--resume {path}: the model predicts {classes} classes, the dataset "
                       f"has {info.num_classes}")
    return model
