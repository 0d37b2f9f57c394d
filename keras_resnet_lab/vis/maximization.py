"""What a block's filters have become: activation maximization of one channel of a block's
output, of its residual branch F(x), or of its shortcut (tf-keras-vis ActivationMaximization).

The optimized input starts from small seeded noise, is regularized with total variation and an
L2 norm (tf-keras-vis ``TotalVariation2D`` and ``Norm``), kept inside the input range at every
step, and seen at a random small shift at every step (jitter); rotation (tf-keras-vis
``Rotate2D``), blur and a grey-image constraint are optional. Everything random is seeded, so
two calls with the same seed return identical images.

The defaults (RMSprop, 100 steps, learning rate 0.05, total variation 3.0, L2 0.03, one pixel
of jitter per 16 pixels) were chosen on the embedded digits at 16x16: they raise the target
activation several times above its value on a blank image while keeping the images smooth.
"""

import dataclasses
import weakref

import numpy as np

from keras_resnet_lab.models.chain import find_block
from keras_resnet_lab.vis import _tkv
from keras_resnet_lab.vis._checks import (
    boolean,
    check_finite_model,
    check_indices,
    check_range,
    check_seed,
    integer,
    number_in,
    one_of,
    positive_int,
)
from keras_resnet_lab.vis.plotting import VisResult, image_grid

__all__ = ["TARGETS", "BranchView", "FilterImages", "branch_view", "channel_activation",
           "maximize_filter", "target_model"]

#: What :func:`maximize_filter` can maximize a channel of: the block's output
#: ``post(shortcut(x) + F(x))``, its residual branch ``F(x)`` (scaled, as added), or its
#: shortcut ``shortcut(x)``.
TARGETS = ("output", "residual", "shortcut")
_LABELS = {"output": "block output", "residual": "branch F(x)", "shortcut": "shortcut x"}


def target_model(model, block=-1, target="output"):
    """``keras.Model([input], t)``, ``t`` the block's output, residual branch or shortcut.

    The branch and shortcut are built with the block's own ``residual``/``shortcut`` methods on
    the block's input tensor, so the new model shares the trained layers (no copy).

    Args:
        model: a model built by this library (or converted, or loaded).
        block: block name or index (default -1: the last block).
        target: one of :data:`TARGETS`.

    Example:
        >>> branch = target_model(model, "stage2_block1", "residual")

    Paper: the branch view is the future work of Chu et al., arXiv 1701.02362.
    """
    import keras

    one_of("target", target, TARGETS)
    info = find_block(model, block)
    inp = _tkv.single_input(model)
    if target == "output":
        out = info.layer.output
    else:
        x = info.layer.input
        if target == "shortcut" and info.layer.plain:
            raise ValueError(f"block '{info.name}' of '{model.name}' is plain: it has no "
                             "shortcut to visualize; use target='output' or 'residual'.")
        out = info.layer.residual(x) if target == "residual" else info.layer.shortcut(x)
    return keras.Model([inp], out, name=f"{model.name}_{info.name}_{target}")


# model -> {(block name, target): CompiledModel}: one sub-model and one traced forward pass per
# block and target, however many times a model is visualized (refinement views call often).
_COMPILED = weakref.WeakKeyDictionary()


def _compiled_target(model, block_name, target):
    cache = _COMPILED.setdefault(model, {})
    if (block_name, target) not in cache:
        cache[(block_name, target)] = _tkv.CompiledModel(target_model(model, block_name, target))
    return cache[(block_name, target)]


def channel_activation(sub_model, images, filter_indices):
    """Mean activation of channel ``filter_indices[i]`` of ``sub_model`` on image ``i``.

    Args:
        sub_model: a model from :func:`target_model` (or any ``keras.Model([input], t)``).
        images: a batch ``(k, ...)`` of inputs.
        filter_indices: ``k`` channel indices, one per image.

    Returns:
        float64 array ``(k,)``: the spatial mean of each image's channel.

    Example:
        >>> channel_activation(target_model(model, -1), result.images, result.filter_indices)

    Paper: Erhan et al. 2009 (the quantity activation maximization raises).
    """
    out = np.asarray(sub_model([np.asarray(images, np.float32)], training=False))
    return np.array([out[i, ..., f].mean() for i, f in enumerate(filter_indices)],
                    dtype=np.float64)


@dataclasses.dataclass
class FilterImages(VisResult):
    """Inputs that maximize channels of one block's output (or branch, or shortcut).

    Attributes:
        model_name: the model.
        block: the block's name.
        target: ``"output"``, ``"residual"`` or ``"shortcut"``.
        filter_indices: the channels, one per image.
        images: the optimized inputs ``(k, H, W, C)``.
        activation: the channel's mean activation on its optimized image.
        blank_activation: on a blank image (every pixel at the start value, 0 if in range).
        random_activation: on uniform noise over ``input_range``.
        steps, seed: of the optimization.
    """

    model_name: str
    block: str
    target: str
    filter_indices: list
    images: np.ndarray
    activation: list
    blank_activation: list
    random_activation: list
    steps: int
    seed: object

    def to_dict(self, include_arrays=False):
        """The result as JSON-ready data (images only with ``include_arrays``)."""
        data = {"model": self.model_name, "block": self.block, "target": self.target,
                "method": "activation maximization",
                "filter_indices": [int(f) for f in self.filter_indices],
                "activation": [float(a) for a in self.activation],
                "blank_activation": [float(a) for a in self.blank_activation],
                "random_activation": [float(a) for a in self.random_activation],
                "steps": self.steps, "seed": self.seed}
        if include_arrays:
            data["images"] = np.round(self.images, 6).tolist()
        return data

    def figure(self, max_columns=8):
        """The grid, one panel per filter, titled with its activation (``plot(path,
        max_columns=8)`` writes it as PNG)."""
        max_columns = positive_int("max_columns", max_columns)
        panels, titles = [], []
        for start in range(0, len(self.images), max_columns):
            idx = range(start, min(start + max_columns, len(self.images)))
            panels.append([self.images[i] for i in idx])
            titles.append([f"filter {self.filter_indices[i]}\nact {self.activation[i]:.2f} "
                           f"(blank {self.blank_activation[i]:.2f})" for i in idx])
        title = (f"Activation maximization of model '{self.model_name}', block '{self.block}' "
                 f"{_LABELS[self.target]}")
        return image_grid(panels, titles, title)


def _blur(sigma, channels):
    """A modifier convolving each channel with a normalized Gaussian (Yosinski et al. 2015)."""
    import tensorflow as tf

    radius = max(1, int(np.ceil(2 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel = np.outer(taps, taps) / np.outer(taps, taps).sum()
    kernel = tf.constant(np.tile(kernel[:, :, None, None], (1, 1, channels, 1)), tf.float32)

    def blur(x):
        padded = tf.pad(x, [[0, 0], [radius, radius], [radius, radius], [0, 0]], "SYMMETRIC")
        return tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID")

    return blur


class _TransientJitter:
    """Random shift of the image for one step only (transformation robustness).

    tf-keras-vis's ``Jitter`` rolls the optimized image itself, so shifts accumulate (with a
    drift: its shifts are drawn from ``[-j, j)``); on 8-32 pixel inputs the pattern then moves
    faster than it forms. This modifier first undoes its previous shift (``tf.roll`` is
    lossless), then applies a fresh one, so each step sees the image at a random offset of at
    most ``jitter`` pixels while the image itself stays in place. :meth:`undo` takes the last
    shift off the returned image.
    """

    def __init__(self, jitter, seed):
        self.jitter = int(jitter)
        self.rng = np.random.default_rng(seed)
        self.shift = (0, 0)

    def __call__(self, x):
        import tensorflow as tf

        new = tuple(int(s) for s in self.rng.integers(-self.jitter, self.jitter + 1, 2))
        delta = (new[0] - self.shift[0], new[1] - self.shift[1])
        self.shift = new
        return tf.roll(x, shift=delta, axis=(1, 2))

    def undo(self, x):
        return np.roll(np.asarray(x), shift=(-self.shift[0], -self.shift[1]), axis=(1, 2))


def _gray(x):
    """A modifier replacing every channel by the channels' mean (grey images)."""
    import tensorflow as tf

    return tf.repeat(tf.reduce_mean(x, axis=-1, keepdims=True), x.shape[-1], axis=-1)


def _input_modifiers(lib, rank, jitter, rotation, seed, input_range, blur=0.0, grayscale=False,
                     channels=1, cumulative_jitter=False):
    import tensorflow as tf

    low, high = input_range
    # Keep the optimized input inside the range at every step (projected gradient ascent):
    # tf-keras-vis clips only the image it returns, which can then miss what was optimized.
    modifiers = [lambda x: tf.clip_by_value(x, low, high)]
    if rank != 4:
        return modifiers
    if grayscale:
        modifiers.insert(0, _gray)
    if blur > 0:
        modifiers.insert(0, _blur(blur, channels))
    if jitter > 0 and cumulative_jitter:
        modifiers.append(lib.Jitter(jitter=jitter))  # draws from NumPy's global generator
    elif jitter > 0:
        modifiers.append(_TransientJitter(jitter, None if seed is None else seed + 2))
    if rotation > 0:
        rotate = lib.Rotate2D(degree=rotation)
        # Rotate2D draws its angles from an unseeded generator of its own: seed it.
        rotate.random_generator = np.random.default_rng(None if seed is None else seed + 1)
        modifiers.append(rotate)
    return modifiers


def maximize_filter(model, block=-1, filter_index=0, *, target="output", steps=100, seed=0,
                    input_range=(-3.0, 3.0), learning_rate=0.05, tv_weight=3.0, l2_weight=0.03,
                    jitter=None, cumulative_jitter=False, rotation=0.0, blur=0.0,
                    grayscale=False, progress_bar=True, path=None):
    """Activation maximization of one (or several) channels of a block, with tf-keras-vis.

    Optimizes an input so that the spatial mean of channel ``filter_index`` of the block's
    output (or branch F(x), or shortcut) is as large as possible, regularized by total
    variation and an L2 norm, with random jitter and rotation at every step. Several filter
    indices are optimized together as a batch (one image each; the model runs at inference,
    so they do not interact).

    Args:
        model: a model built by this library (or converted, or loaded); image input.
        block: block name or index (default -1: the last block).
        filter_index: a channel index or a list of them, in ``[0, channels)``.
        target: ``"output"`` (the block's output), ``"residual"`` (its branch F(x)) or
            ``"shortcut"``.
        steps: optimization steps.
        seed: seeds the start image and the random jitter/rotation (None: unseeded).
        input_range: ``(low, high)`` the returned images are clipped to; the default suits
            standardized inputs (the embedded digits lie in about [-0.6, 2.9]).
        learning_rate: of the RMSprop optimizer (about the input change per step).
        tv_weight: weight of tf-keras-vis ``TotalVariation2D`` (0 disables it).
        l2_weight: weight of tf-keras-vis ``Norm(p=2)`` (0 disables it).
        jitter: maximal random shift in pixels per step (None: ``max(1, height // 16)``;
            0 disables it). The shift applies to one step only (the image stays in place).
        cumulative_jitter: use tf-keras-vis ``Jitter`` instead, which rolls the image itself
            so shifts accumulate (suits large inputs; on 8-32 px inputs it stalls the
            optimization).
        rotation: maximal random rotation in degrees per step, tf-keras-vis ``Rotate2D``
            (cumulative; 0 disables it; try 1-3 on inputs of 64 px and more).
        blur: standard deviation in pixels of a Gaussian blur applied at every step
            (0 disables it).
        grayscale: keep the image grey (equal channels), as for the digits, whose three
            channels are copies.
        progress_bar: show a tqdm progress bar.
        path: if given, a PNG grid is written there.

    Returns:
        :class:`FilterImages` with the images and the channel's activation on them, on a
        blank image and on random noise.

    Raises:
        ValueError: unknown block (lists the valid ones), filter index out of range (says the
            range), bad settings.

    Example:
        >>> result = maximize_filter(model, "stage2_block1", [0, 1, 2], steps=64, seed=0)
        >>> result.activation[0] > result.blank_activation[0]
        True

    Paper: Erhan et al. 2009; Chu et al., arXiv 1701.02362 (regularized maximization on ResNets).
    """
    import keras

    steps = positive_int("steps", steps)
    seed = check_seed(seed)
    grayscale = boolean("grayscale", grayscale)
    cumulative_jitter = boolean("cumulative_jitter", cumulative_jitter)
    progress_bar = boolean("progress_bar", progress_bar)
    low, high = check_range("input_range", input_range)
    number_in("learning_rate", learning_rate, 0.0, None, low_open=True)
    number_in("tv_weight", tv_weight, 0.0)
    number_in("l2_weight", l2_weight, 0.0)
    number_in("rotation", rotation, 0.0, 180.0)
    number_in("blur", blur, 0.0, 10.0)
    one_of("target", target, TARGETS)
    info = find_block(model, block)
    compiled = _compiled_target(model, info.name, target)
    sub = compiled.model
    shape = tuple(_tkv.single_input(model).shape[1:])
    if None in shape:
        raise ValueError(f"model '{model.name}' has an input of unknown size {shape}; "
                         "activation maximization needs a fixed input shape.")
    if jitter is None:
        jitter = max(1, shape[0] // 16) if len(shape) == 3 else 0
    jitter = integer("jitter", jitter, 0, allow_none=True)
    channels = int(sub.outputs[0].shape[-1])
    filters = check_indices("filter_index", filter_index, channels,
                            f"block '{info.name}' {_LABELS[target]} has {channels} channels")
    rng = np.random.default_rng(seed)
    start = float(np.clip(0.0, low, high))
    span = high - low
    optimized = _tkv.even_list(filters)  # gradients on an even batch: see _tkv.even_batch
    batch = (len(optimized),) + shape
    seed_input = (start + rng.normal(0.0, 0.02 * span, batch)).clip(low, high)
    blank = np.full(batch, start, np.float32)
    noise = rng.uniform(low, high, batch).astype(np.float32)
    check_finite_model(sub, blank[:1])

    lib = _tkv.tkv()
    regularizers = []
    if tv_weight > 0 and len(shape) == 3:
        regularizers.append(lib.TotalVariation2D(weight=float(tv_weight)))
    if l2_weight > 0:
        regularizers.append(lib.Norm(weight=float(l2_weight), p=2))
    maximizer = lib.ActivationMaximization(sub, clone=False)
    maximizer.model = compiled
    callback = _tkv.make_progress_callback(
        steps, f"maximize {info.name} {target} {filters if len(filters) < 5 else ''}".strip(),
        progress_bar)
    modifiers = _input_modifiers(lib, len(batch), jitter, float(rotation), seed, (low, high),
                                 float(blur), bool(grayscale), shape[-1],
                                 bool(cumulative_jitter))
    with _tkv.numpy_seed(seed):
        images = maximizer(
            lib.CategoricalScore(optimized), seed_input=seed_input.astype(np.float32),
            input_range=(low, high), steps=steps, input_modifiers=modifiers,
            regularizers=regularizers,
            optimizer=keras.optimizers.RMSprop(learning_rate=float(learning_rate), rho=0.999),
            callbacks=[callback] if callback is not None else None)
    images = np.asarray(images, dtype=np.float32)
    for modifier in modifiers:
        if isinstance(modifier, _TransientJitter):
            images = modifier.undo(images)
    images, blank, noise = images[:len(filters)], blank[:len(filters)], noise[:len(filters)]
    if grayscale and len(shape) == 3:  # the last optimizer step is not projected yet
        images = np.repeat(images.mean(axis=-1, keepdims=True), shape[-1], axis=-1)
    result = FilterImages(
        model.name, info.name, target, filters, images,
        channel_activation(sub, images, filters).tolist(),
        channel_activation(sub, blank, filters).tolist(),
        channel_activation(sub, noise, filters).tolist(), steps, seed)
    if path is not None:
        result.plot(path)
    return result


@dataclasses.dataclass
class BranchView(VisResult):
    """One block taken apart: the same channels maximized at its shortcut, at its residual
    branch F(x) and at its output.

    Attributes:
        model_name, block: where.
        filter_indices: the channels (one row each).
        targets: the columns, among ``"shortcut"``, ``"residual"``, ``"output"``.
        results: ``{target: FilterImages}``.
        zero_padded: channels whose shortcut is a zero-padded channel (option A), shown blank.
    """

    model_name: str
    block: str
    filter_indices: list
    targets: list
    results: dict
    zero_padded: list

    def to_dict(self, include_arrays=False):
        """The result as JSON-ready data."""
        return {"model": self.model_name, "block": self.block,
                "method": "activation maximization (branch view)",
                "filter_indices": [int(f) for f in self.filter_indices],
                "zero_padded": [int(f) for f in self.zero_padded],
                "results": {t: r.to_dict(include_arrays) for t, r in self.results.items()}}

    def figure(self):
        """The grid (rows: filters; columns: shortcut, F(x), output); ``plot(path)`` writes it
        as PNG."""
        panels, titles, labels = [], [], []
        for row, f in enumerate(self.filter_indices):
            panels.append([])
            titles.append([])
            labels.append(f"filter {f}")
            for target in self.targets:
                result = self.results[target]
                if target == "shortcut" and f in self.zero_padded:
                    panels[-1].append(None)
                    titles[-1].append("")
                    continue
                panels[-1].append(result.images[row])
                head = _LABELS[target] + "\n" if row == 0 else ""
                titles[-1].append(f"{head}act {result.activation[row]:.2f}")
        title = (f"Branch view of model '{self.model_name}', block '{self.block}': "
                 "each channel maximized at the shortcut, the branch F(x) and the output")
        return image_grid(panels, titles, title, labels)


def branch_view(model, block=-1, filter_index=None, path=None, **kwargs):
    """The residual branch F(x) of a block maximized apart from its shortcut and its output.

    For each channel, three inputs are optimized from the same seeded start: one maximizing
    the channel of the shortcut ``x`` (omitted for plain blocks; blank for channels that an
    option-A shortcut zero-pads), one of the branch ``F(x)``, and one of the block's output
    ``post(x + F(x))``. The paper compared block outputs only; this is its future work.

    Args:
        model: a model built by this library (image input).
        block: block name or index (default -1).
        filter_index: a channel index or a list of them (default: the first four channels).
        path: if given, a PNG grid is written there.
        **kwargs: passed to :func:`maximize_filter` (steps, seed, input_range, ...).

    Returns:
        :class:`BranchView`.

    Example:
        >>> view = branch_view(model, "stage2_block2", [0, 1], steps=64, path="branch.png")

    Paper: Chu et al., arXiv 1701.02362 (future work).
    """
    info = find_block(model, block)
    layer = info.layer
    targets = ["residual", "output"] if layer.plain else ["shortcut", "residual", "output"]
    if filter_index is None:
        filter_index = list(range(min(4, int(layer.output.shape[-1]))))
    results = {}
    for target in targets:
        results[target] = maximize_filter(model, info.name, filter_index, target=target,
                                          **kwargs)
    filters = results["output"].filter_indices
    zero_padded = []
    if not layer.plain and getattr(layer, "projection", None) is None:
        in_channels = int(layer.input.shape[-1])
        zero_padded = [f for f in filters if f >= in_channels]
    view = BranchView(model.name, info.name, filters, targets, results, zero_padded)
    if path is not None:
        view.plot(path)
    return view
