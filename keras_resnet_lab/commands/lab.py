"""``keras-resnet-lab lab``: from nothing to a report that explains skip connections."""

from keras_resnet_lab.commands._common import integer


def register(subparsers):
    parser = subparsers.add_parser(
        "lab", help="train a ResNet and its plain twin, dissect both, write report.html",
        description="Train a CIFAR-style ResNet and its plain twin, run the lesion study, the "
                    "path-length analysis, refinement metrics and block similarity, the "
                    "estimation error and filter refinement score, the Hessian at zero init "
                    "and multi-residual at equal parameters, draw "
                    "Grad-CAM and the refinement view, export the ResNet to SavedModel and "
                    "ONNX, and write a self-contained report.html with summary.json. Runs "
                    "offline on the embedded digits by default.")
    parser.add_argument("--out", default="lab-report", help="output folder (default lab-report)")
    parser.add_argument("--dataset", default="digits", choices=("digits", "cifar10"))
    parser.add_argument("--data-dir", default=None, help="tensorflow-datasets folder (cifar10)")
    parser.add_argument("--depth", type=int, default=20, choices=(20, 32, 56, 110))
    parser.add_argument("--epochs", type=integer(1), default=None,
                        help="training epochs (default 15, 8 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="small images, few epochs and samples (about 3 minutes)")
    parser.add_argument("--seed", type=integer(0), default=0, help="seed of everything random")
    parser.add_argument("--force", action="store_true",
                        help="start over in an --out that already holds results")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run, skipping the finished steps")
    parser.set_defaults(func=run, check=check)


def check(args):
    """Every argument error, before TensorFlow loads and before anything is written."""
    from keras_resnet_lab.commands._common import CliError, check_out

    if args.force and args.resume:
        raise CliError("--force and --resume exclude each other")
    check_out(args, reuse=args.force or args.resume, hint=REUSE_HINT)


REUSE_HINT = "pass --force to start over or --resume to continue an interrupted run"


def run(args):
    from keras_resnet_lab.lab import LabConfig, run_lab

    config = LabConfig(out=args.out, dataset=args.dataset, depth=args.depth, quick=args.quick,
                       epochs=args.epochs, data_dir=args.data_dir, seed=args.seed)
    run_lab(config, resume=args.resume, force=args.force)
    return 0
