"""``keras-resnet-lab lab``: from nothing to a report that tests the papers' findings."""

from keras_resnet_lab.commands._common import integer

#: What the lab runs, for ``lab --help`` (keep in step with keras_resnet_lab.lab.pipeline).
DESCRIPTION = """\
Train a CIFAR ResNet (default ResNet-56 on the embedded 16x16 digits, 12 epochs) and its plain
twin, then test the papers' findings, each by its rule in keras_resnet_lab.findings, with a 95%
interval and a verdict (held / not held / inconclusive):

  on the two trained networks (bootstrap over test examples, draws, channels):
    veit_lesion, veit_k_deletion, veit_reorder  deleting and reordering blocks (Veit et al.;
                                the lesions against plain-20, a plain net that trains)
    veit_path_gradient          gradient per path length (Veit et al.)
    jastrzebski_refinement      iterative refinement (Jastrzebski et al.)
    jastrzebski_first_block     the first block changes most (Jastrzebski et al.)
    greff_estimation            unrolled iterative estimation (Greff et al.)
    chu_filters                 filters refined across blocks (Chu et al.)
    kornblith_cka               block similarity (linear CKA)
  on their own networks, over three seeds (--seed and the next two):
    he_degradation              plain and residual nets at depths 8 and 56 (He et al.)
    srivastava_depth            highway against plain nets at depth (Srivastava et al.)
    srivastava_gates            late highway gates against initialization (Srivastava et al.)
    abdi_multires               multi-residual at equal parameters (Abdi & Nahavandi)
    szegedy_scaling             residual branch scaling without batch norm (Szegedy et al.)
    jastrzebski_sharing         weight-shared stacks and batch norm (Jastrzebski et al.)
    balduzzi_shattering         shattered gradients at initialization (Balduzzi et al.)
    balduzzi_looks_linear       a deep plain net from the looks-linear init (Balduzzi et al.)
    li_hessian                  the Hessian at zero initialization (Li et al.; 3 tasks)

then draw Grad-CAM and the refinement view, export the ResNet to SavedModel and ONNX (parity
checked), and write a self-contained report.html, summary.json and figures/. Runs offline on
the embedded digits; about 10 minutes on 2 CPU cores (--quick: about 3, with smaller networks,
where more findings end inconclusive).
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "lab", help="train a ResNet and its plain twin, test the papers' findings, write "
                    "report.html", description=DESCRIPTION)
    parser.add_argument("--out", default="lab-report", help="output folder (default lab-report)")
    parser.add_argument("--dataset", default="digits", choices=("digits", "cifar10"),
                        help="digits (embedded, offline) or a prepared cifar10 (default "
                             "digits)")
    parser.add_argument("--data-dir", default=None, help="tensorflow-datasets folder (cifar10)")
    parser.add_argument("--depth", type=integer(), default=None, choices=(20, 32, 44, 56, 110),
                        metavar="{20,32,44,56,110}",
                        help="depth of the ResNet and its twin (default 56; 20 with --quick)")
    parser.add_argument("--epochs", type=integer(1), default=None,
                        help="training epochs (default 12; 6 with --quick)")
    parser.add_argument("--recipe", choices=("sgd", "adam"), default="sgd",
                        help="sgd: SGD lr 0.05, momentum 0.9, weight decay 5e-4 (He et al.); "
                             "adam: Adam 2e-3 without weight decay (default sgd)")
    parser.add_argument("--quick", action="store_true",
                        help="ResNet-20 on 8x8 digits, 6 epochs, smoke settings of the seeded "
                             "experiments (about 3 minutes)")
    parser.add_argument("--seed", type=integer(0), default=0,
                        help="seed of everything random; the seeded experiments use it and "
                             "the next two (default 0)")
    parser.add_argument("--processes", type=integer(1), default=None,
                        help="worker processes for the training (default: up to 2)")
    parser.add_argument("--force", action="store_true",
                        help="start over in an --out that holds an earlier lab run")
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
                       epochs=args.epochs, recipe=args.recipe, data_dir=args.data_dir,
                       seed=args.seed, processes=args.processes)
    run_lab(config, resume=args.resume, force=args.force)
    return 0
