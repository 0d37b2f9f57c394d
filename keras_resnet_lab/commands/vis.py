"""``keras-resnet-lab vis``: attribution maps and filter visualizations of a saved model."""

import re

from keras_resnet_lab.commands._common import add_run_arguments, integer

METHODS = ("saliency", "gradcam", "gradcam++", "scorecam", "filters", "refinement")
_FILE_NAMES = {"saliency": "saliency", "gradcam": "gradcam", "gradcam++": "gradcam_pp",
               "scorecam": "scorecam"}


def register(subparsers):
    parser = subparsers.add_parser(
        "vis", help="visualize what a model's blocks look at and what their filters became",
        description="Attribution maps (saliency / SmoothGrad, Grad-CAM, Grad-CAM++, Score-CAM at "
                    "a block) and activation maximization (a block's filters; the refinement "
                    "view of a stage, the block's branch F(x) apart from its shortcut, and "
                    "filters matched across the next stage boundary) of a .keras model, on the "
                    "embedded digits at the model's input size or on your image files. Writes "
                    "labelled PNG grids and JSON numbers into --out.")
    parser.add_argument("model", metavar="MODEL.keras", help="a saved Keras model file")
    parser.add_argument("--method", required=True, choices=METHODS,
                        help="saliency (SmoothGrad with --smooth-samples), gradcam, gradcam++, "
                             "scorecam: maps of the class score; filters: maximize filters of "
                             "--block; refinement: the same filters maximized at every block of "
                             "--block's stage, --block's branch F(x) apart from its shortcut, "
                             "and filters matched across the stage boundary")
    parser.add_argument("--block", default="-1",
                        help="block name (stage2_block1) or index (0, -1, ...); default: the "
                             "last block")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--images", nargs="+", metavar="FILE", default=None,
                        help="image files to explain (default: embedded digits). Files are "
                             "RESIZED (bilinear) to the model's input size and converted to its "
                             "channels")
    parser.add_argument("--preprocess", choices=("digits", "unit", "raw"), default="digits",
                        help="how file pixels are scaled: digits (standardized like the "
                             "embedded digits; white on black), unit ([0, 1]) or raw ([0, 255])"
                             " (default: digits)")
    parser.add_argument("--class-index", type=integer(0), default=None,
                        help="class to explain (default: each image's predicted class)")
    parser.add_argument("--filter", type=integer(0), default=None,
                        help="filter (channel) to maximize (default: the first --count)")
    parser.add_argument("--target", choices=("output", "residual", "shortcut"),
                        default="output",
                        help="filters: maximize the block's output, its residual branch F(x) "
                             "or its shortcut (default: output)")
    parser.add_argument("--count", type=integer(1), default=None,
                        help="images to explain (default 8), or filters to maximize (default "
                             "8 for filters, 4 for refinement)")
    parser.add_argument("--smooth-samples", type=integer(0), default=0,
                        help="saliency: SmoothGrad with this many noisy samples (default 0)")
    parser.add_argument("--steps", type=integer(1), default=100,
                        help="activation-maximization steps (default 100)")
    add_run_arguments(parser)
    parser.set_defaults(func=run, check=check)


def check(args):
    """Every argument error, before TensorFlow loads and before anything is written."""
    import os

    from keras_resnet_lab.commands._common import CliError, check_out, existing_model_file

    existing_model_file(args.model)
    for path in args.images or ():
        if not os.path.isfile(path):
            raise CliError(f"--images: image file not found: {path}")
    check_out(args, reuse=args.force)


def _block(text):
    return int(text) if re.fullmatch(r"[+-]?\d+", text.strip()) else text.strip()


def _sample(args, model):
    """(images, labels or None, value range) from --images or the embedded digits."""
    from keras_resnet_lab.vis import digits_for_model, load_image_files

    count = 8 if args.count is None else args.count
    if args.images:
        images, value_range = load_image_files(args.images, model, args.preprocess)
        return images, None, value_range
    return digits_for_model(model, count if args.method not in ("filters", "refinement")
                            else 256)


def _written(paths, out):
    for path in paths:
        print(f"wrote {path}")
    print(f"results in {out}")


def run(args):
    from keras_resnet_lab.commands._common import load_model_file, out_folder
    from keras_resnet_lab.models import find_block

    model = load_model_file(args.model)
    info = find_block(model, _block(args.block))
    images, _, value_range = _sample(args, model)
    with out_folder(args, "vis", reuse=args.force) as out:
        return _draw(args, model, info, images, value_range, out)


def _draw(args, model, info, images, value_range, out):
    """Draw the method's figures and numbers into ``out``."""
    import os

    import numpy as np

    join = lambda name: os.path.join(out, name)  # noqa: E731
    written = []

    if args.method in _FILE_NAMES:
        from keras_resnet_lab.vis import cam, saliency

        stem = _FILE_NAMES[args.method]
        if args.method == "saliency":
            result = saliency(model, images, args.class_index, args.smooth_samples,
                              seed=args.seed)
            stem = "smoothgrad" if args.smooth_samples else stem
        else:
            result = cam(model, images, args.class_index, block=info.name, method=args.method)
        written += [result.plot(join(f"{stem}.png")), result.to_json(join(f"{stem}.json"))]
        _written(written, out)
        return 0

    # Activation maximization: the images set the input range (and grey images stay grey).
    grey = images.shape[-1] > 1 and bool(np.allclose(images, images[..., :1]))
    options = dict(steps=args.steps, seed=args.seed, input_range=value_range, grayscale=grey,
                   progress_bar=not args.quiet)
    channels = int(info.layer.output.shape[-1])
    if args.filter is not None:
        filters = [args.filter]
    else:
        default = 8 if args.method == "filters" else 4
        filters = list(range(min(args.count or default, channels)))
    if args.method == "filters":
        from keras_resnet_lab.vis import maximize_filter

        result = maximize_filter(model, info.name, filters, target=args.target, **options)
        stem = f"filters_{info.name}" + ("" if args.target == "output" else f"_{args.target}")
        written += [result.plot(join(f"{stem}.png")), result.to_json(join(f"{stem}.json"))]
        _written(written, out)
        return 0

    from keras_resnet_lab.atomic import atomic_write_json
    from keras_resnet_lab.models import stages
    from keras_resnet_lab.vis import branch_view, match_filters, refinement_view

    summary = {}
    view = refinement_view(model, info.stage, filters, **options)
    written.append(view.plot(join(f"refinement_stage{info.stage}.png")))
    summary["refinement"] = view.to_dict()
    branch = branch_view(model, info.name, filters, **options)
    written.append(branch.plot(join(f"branch_{info.name}.png")))
    summary["branch"] = branch.to_dict()
    ordered = sorted(stages(model))
    if len(ordered) > 1 and len(images) > 1:
        stage = info.stage if info.stage != ordered[-1] else ordered[-2]
        matches = match_filters(model, stage, images, top_k=min(6, len(filters) + 2),
                                **options)
        written.append(matches.plot(join(f"matching_stage{stage}.png")))
        summary["matching"] = matches.to_dict()
    written.append(atomic_write_json(summary, join("refinement.json")))
    _written(written, out)
    return 0
