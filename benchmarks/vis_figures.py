"""The visualization figures on the embedded digits: refinement view, Grad-CAM, branch view and
cross-stage filter matching, for a small ResNet and its plain twin.

Trains a CIFAR-style network (3 blocks a stage, 8/16/32 channels, option A shortcuts) and its
plain twin on 16x16 digits, then

- maximizes every filter at every block of every stage (the refinement view of Chu et al.,
  arXiv 1701.02362) and measures how similar the images of the same filter are at consecutive
  blocks, against different filters (the control) and against the plain twin;
- measures how much Grad-CAM / Grad-CAM++ / Score-CAM mass falls on the digit's strokes rather
  than on the empty border;
- matches filters across each stage boundary by activation correlation.

Writes ``vis_refinement.png`` (the README figure: stage 2, residual next to plain),
``vis_gradcam.png``, ``vis_branch.png``, ``vis_matching.png`` and ``vis_figures.json`` into
``--out``. About 3-4 minutes on 2 CPU cores.

Usage:
    python benchmarks/vis_figures.py --out benchmarks/results
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def train(plain, blocks, epochs, image_size, seed):
    """A digits classifier (or its plain twin) and its test accuracy."""
    import keras

    from keras_resnet_lab.data import load_digits
    from keras_resnet_lab.models import cifar_network

    (x_train, y_train), (x_test, y_test) = load_digits(image_size=image_size, channels=3)
    keras.utils.set_random_seed(seed)
    model = cifar_network(blocks, widths=(8, 16, 32), input_shape=x_train.shape[1:],
                          num_classes=10, plain=plain, shortcut="A",
                          name=f"digits_resnet{6 * blocks + 2}{'_plain' if plain else ''}")
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=0)
    return model, float(model.evaluate(x_test, y_test, verbose=0)[1])


def stroke_ratio(maps, images):
    """Median over images of mean map value on stroke pixels / on the empty border frame."""
    from keras_resnet_lab.data import digit_layout

    size, border = digit_layout(images.shape[1])
    frame = np.ones(images.shape[1:3], bool)
    frame[border:border + size, border:border + size] = False
    ratios = []
    for image, heat in zip(images.mean(axis=-1), maps):
        strokes = image > image[frame].mean() + 0.5
        ratios.append(heat[strokes].mean() / max(heat[frame].mean(), 1e-6))
    return float(np.median(ratios))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    parser.add_argument("--blocks", type=int, default=3, help="blocks per stage")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100, help="maximization steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from keras_resnet_lab.atomic import atomic_write_json
    from keras_resnet_lab.data import load_digits
    from keras_resnet_lab.models import stages
    from keras_resnet_lab.vis import (
        branch_view,
        cam,
        digits_for_model,
        match_filters,
        plot_refinement_comparison,
        refinement_view,
    )

    os.makedirs(args.out, exist_ok=True)
    start = time.time()
    results = {"setup": vars(args).copy(), "models": {}}
    models = {}
    for kind, plain in (("residual", False), ("plain", True)):
        model, accuracy = train(plain, args.blocks, args.epochs, args.image_size, args.seed)
        models[kind] = model
        results["models"][kind] = {"name": model.name, "test_accuracy": accuracy}
        print(f"{model.name}: test accuracy {accuracy:.3f}")

    _, (x_test, y_test) = load_digits(image_size=args.image_size, channels=3)
    shown, _, value_range = digits_for_model(models["residual"], 8)
    options = dict(steps=args.steps, seed=args.seed, input_range=value_range, grayscale=True,
                   progress_bar=False)

    # Refinement view: every filter at every block of every stage.
    refinement = {}
    views = {}
    for kind, model in models.items():
        for stage, infos in stages(model).items():
            channels = int(infos[0].layer.output.shape[-1])
            view = refinement_view(model, stage, list(range(channels)), **options)
            views[(kind, stage)] = view
            refinement.setdefault(kind, {})[f"stage{stage}"] = {
                "filters": channels,
                "same_filter_similarity": round(view.mean_same_filter_similarity, 4),
                "other_filter_similarity": round(view.other_filter_similarity, 4),
                "mean_activation": round(float(np.mean(view.activation)), 4),
                "mean_blank_activation": round(float(np.mean(view.blank_activation)), 4)}
            print(f"refinement {kind} stage {stage}: same filter "
                  f"{view.mean_same_filter_similarity:.2f}, other filters "
                  f"{view.other_filter_similarity:.2f}")
    results["refinement"] = refinement
    plot_refinement_comparison([views[("residual", 2)], views[("plain", 2)]],
                               os.path.join(args.out, "vis_refinement.png"),
                               names=["ResNet", "plain twin"], rows=5)

    # Grad-CAM family: mass on the strokes versus the empty border.
    x, y = x_test[:128], y_test[:128]
    attribution = {}
    for kind, model in models.items():
        for method in ("gradcam", "gradcam++", "scorecam"):
            maps = cam(model, x, y, method=method).maps
            attribution.setdefault(kind, {})[method] = round(stroke_ratio(maps, x), 3)
    results["stroke_to_border_ratio"] = attribution
    print(f"Grad-CAM stroke/border mass ratio: {attribution}")
    cam(models["residual"], shown, method="gradcam",
        path=os.path.join(args.out, "vis_gradcam.png"))

    # The branch F(x) of a middle block apart from its shortcut and output.
    branch = branch_view(models["residual"], "stage2_block2", [0, 1, 2, 3], **options)
    branch.plot(os.path.join(args.out, "vis_branch.png"))
    results["branch"] = {t: {"activation": np.round(r.activation, 4).tolist(),
                             "blank_activation": np.round(r.blank_activation, 4).tolist()}
                         for t, r in branch.results.items()}

    # Cross-stage matching.
    matching = {}
    for kind, model in models.items():
        for stage in sorted(stages(model))[:-1]:
            figure = (kind == "residual" and stage == 1)
            matches = match_filters(model, stage, x_test[:256], top_k=6 if figure else 0,
                                    path=(os.path.join(args.out, "vis_matching.png")
                                          if figure else None), **options)
            data = matches.to_dict()
            matching.setdefault(kind, {})[f"stage{stage}->{stage + 1}"] = {
                "identity_fraction": round(data["identity_fraction"], 4),
                "mean_pair_correlation": round(data["mean_pair_correlation"], 4),
                "baseline_correlation": round(data["baseline_correlation"], 4)}
    results["matching"] = matching
    print(f"cross-stage matching: {matching}")
    results["seconds"] = round(time.time() - start, 1)
    atomic_write_json(results, os.path.join(args.out, "vis_figures.json"))
    print(f"wrote vis_refinement.png, vis_gradcam.png, vis_branch.png, vis_matching.png and "
          f"vis_figures.json to {args.out} in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
