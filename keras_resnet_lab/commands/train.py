"""``keras-resnet-lab train``: train a named model on a dataset, resumably."""

import json
import os

DEFAULT_EPOCHS = 15


def register(subparsers):
    parser = subparsers.add_parser(
        "train", help="train a residual network (or its plain twin) on a dataset",
        description="Train a model by name on the embedded digits (offline) or a prepared "
                    "tensorflow-datasets dataset. Writes model.keras, history.json, curves.png "
                    "and results.json into --out. A run killed mid-way resumes from its last "
                    "finished epoch when started again with the same --out.")
    parser.add_argument("--model", default="resnet20",
                        help="model name, e.g. resnet20, resnet56v2, resnet18, wrn16_4, highway "
                             "(default: resnet20)")
    parser.add_argument("--plain", action="store_true",
                        help="train the plain twin (same layers, no shortcuts)")
    parser.add_argument("--dataset", default="digits",
                        help="digits (embedded), cifar10, cifar100 or imagenet2012")
    parser.add_argument("--data-dir", default=None, help="tensorflow-datasets data folder")
    parser.add_argument("--image-size", type=int, default=None,
                        help="input side in pixels (default: the dataset's)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--recipe", choices=("he", "general"), default="he",
                        help="he: SGD 0.9, lr 0.1 /10 at 50%% and 75%%, wd 1e-4 (He et al.); "
                             "general: AdamW with warm-up and cosine decay")
    parser.add_argument("--lr", type=float, default=None, help="base learning rate")
    parser.add_argument("--strategy", default=None,
                        help="tf.distribute strategy: default, mirrored or multiworker "
                             "(multiworker reads TF_CONFIG)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--force", action="store_true",
                        help="start over in an --out that already holds a finished run")
    parser.add_argument("--quiet", action="store_true", help="one line per epoch, no bar")
    parser.set_defaults(func=run)


def run(args):
    import keras

    from keras_resnet_lab.commands._common import CliError, prepare_out_dir
    from keras_resnet_lab.data import dataset_info, load_dataset
    from keras_resnet_lab.models import build_model
    from keras_resnet_lab.training import fit, general_recipe, he_cifar_recipe

    if args.epochs < 1:
        raise CliError(f"--epochs must be >= 1, got {args.epochs}")
    finished = (os.path.exists(os.path.join(args.out, "model.keras"))
                and not os.path.exists(os.path.join(args.out, "backup")))
    if finished and not args.force:
        raise CliError(f"--out {args.out} already holds a finished run; pass --force to train "
                       "again from scratch")
    prepare_out_dir(args.out, force=True)
    resuming = os.path.isdir(os.path.join(args.out, "backup")) and not args.force
    info = dataset_info(args.dataset, image_size=args.image_size)

    def model_fn():
        keras.utils.set_random_seed(args.seed)
        return build_model(args.model, plain=args.plain, input_shape=info.input_shape,
                           num_classes=info.num_classes)

    def data(split, **kwargs):
        return load_dataset(args.dataset, split=split, batch_size=args.batch_size,
                            data_dir=args.data_dir, image_size=args.image_size,
                            seed=args.seed, **kwargs)

    train_ds, test_ds = data(info.train_split), data(info.test_split)
    if args.recipe == "he":
        recipe = he_cifar_recipe(**({} if args.lr is None else {"base_lr": args.lr}))
    else:
        recipe = general_recipe(**({} if args.lr is None else {"base_lr": args.lr}))
    if resuming:
        print(f"resuming the run in {args.out}")
    result = fit(model_fn, train_ds, args.epochs, recipe, args.out, validation_data=test_ds,
                 strategy=args.strategy, resume=not args.force, seed=args.seed,
                 verbose=2 if args.quiet else 1)
    if result.terminated:
        raise CliError(f"training stopped: {result.terminated}")
    loss, accuracy = result.model.evaluate(test_ds, verbose=0)[:2]
    summary = {"model": result.model.name, "dataset": args.dataset, "epochs": args.epochs,
               "recipe": recipe.to_dict(), "test_loss": float(loss),
               "test_accuracy": float(accuracy), "parameters": int(result.model.count_params())}
    from keras_resnet_lab.training import atomic_write_json

    atomic_write_json(summary, os.path.join(args.out, "results.json"))
    print(json.dumps({k: summary[k] for k in ("model", "dataset", "test_accuracy")}))
    return 0
