"""Surgery on block chains: new models that drop, reorder or repeat blocks, sharing the layers.

Every model of the library is a sequential chain ``input -> stem -> blocks -> head``.
:func:`chain_steps` walks that chain once; a *plan* (a list of :class:`PlanStep`) says which step
runs where and whether a block runs whole or with its branch deleted; :func:`plan_model`
turns a plan into a functional model whose layers are the original ones (no weight copies) and
:func:`run_plan` runs a plan on tensors directly (eagerly, under a ``GradientTape`` or while
tracing), which is what the analyses do. :func:`drop_blocks`, :func:`reorder_blocks` and
:func:`repeat_block` are the three surgeries of the papers (Veit et al., arXiv 1605.06431;
Jastrzebski et al., arXiv 1710.04773).
"""

import dataclasses
import inspect

import keras
from keras import ops

from keras_resnet_lab import _keras_compat
from keras_resnet_lab._checks import MAX_COUNT, count, is_int, text, text_or
from keras_resnet_lab.layers.base import BlockBase
from keras_resnet_lab.models.chain import blocks, find_block


@dataclasses.dataclass(frozen=True, eq=False)
class ChainStep:
    """One call of the chain: ``operation`` applied (as in ``node``) to the previous output.

    ``block`` is the :class:`~keras_resnet_lab.models.BlockInfo` when the operation is a block,
    else None; ``input_shape``/``output_shape`` are the symbolic shapes in the model.
    """

    index: int
    operation: object
    node: object
    block: object
    input_shape: tuple
    output_shape: tuple

    @property
    def name(self):
        return self.operation.name

    def __call__(self, x, training=False):
        """Apply the step to ``x`` with the arguments it had in the model."""
        args, kwargs = _keras_compat.node_arguments(
            self.node, {id(_keras_compat.node_inputs(self.node)[0]): x})
        if _accepts_training(self.operation) and "training" not in kwargs:
            kwargs["training"] = training
        return self.operation(*args, **kwargs)


@dataclasses.dataclass(frozen=True, eq=False)
class PlanStep:
    """A step of a plan: run ``step`` whole, or (``skip=True``, blocks only) with its branch
    deleted, as :func:`skip_block` does."""

    step: ChainStep
    skip: bool = False

    @property
    def key(self):
        """Identity of the step and action (two plans agree where their keys agree)."""
        return (id(self.step.operation), id(self.step.node), self.skip)


def _accepts_training(operation):
    call = getattr(operation, "call", None)
    if call is None:
        return False
    try:
        return "training" in inspect.signature(call).parameters
    except (TypeError, ValueError):
        return False


def chain_steps(model):
    """The steps of ``model``'s sequential chain, from the first layer after the input.

    Args:
        model: a functional Keras model with one input and one output in which every
            operation takes exactly the previous operation's single output (every model the
            library builds, converts or makes by surgery).

    Raises:
        ValueError: if the model is not such a chain (the message names the operation).

    Example:
        >>> [s.name for s in chain_steps(cifar_network(1, widths=(4,), input_shape=(8, 8, 3)))]
        ['stem_conv', 'stem_bn', 'stem_relu', 'stage1_block1', 'avg_pool', 'predictions']
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "outputs"):
        raise ValueError(f"`model` must be a functional keras.Model, got {type(model).__name__}.")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"model '{model.name}' is not a sequential chain: it has "
                         f"{len(model.inputs)} inputs and {len(model.outputs)} outputs "
                         "(surgery needs exactly one of each).")
    infos = {}
    try:
        infos = {info.name: info for info in blocks(model)}
    except ValueError:
        pass
    reversed_steps = []
    tensor = model.outputs[0]
    source = model.inputs[0]
    while tensor is not source:
        made = _keras_compat.producer(tensor)
        if made is None:
            raise ValueError(f"model '{model.name}' is not a sequential chain: a tensor "
                             "has no producing operation.")
        operation, node = made
        if _keras_compat.is_input_node(node):
            raise ValueError(f"model '{model.name}' is not a sequential chain: the walk from "
                             f"the output reached input '{operation.name}', which is not the "
                             "model's input.")
        inputs = _keras_compat.node_inputs(node)
        outputs = _keras_compat.node_outputs(node)
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(
                f"model '{model.name}' is not a sequential chain: operation "
                f"'{operation.name}' takes {len(inputs)} tensors and makes "
                f"{len(outputs)}; surgery needs every operation to map the "
                "previous output to one tensor.")
        block = None
        if isinstance(operation, BlockBase) and operation.name in infos:
            block = infos[operation.name]
        reversed_steps.append((operation, node, block, tuple(inputs[0].shape),
                               tuple(outputs[0].shape)))
        tensor = inputs[0]
    return [ChainStep(i, *fields) for i, fields in enumerate(reversed(reversed_steps))]


def skip_block(block, x):
    """A block's output with its branch deleted: ``block.merge(shortcut(x), 0)``.

    That is the shortcut ``shortcut(x)`` for pre-activation and highway blocks (``T = 0``, the
    layer only carries) and ``relu(shortcut(x))`` for post-activation blocks. A plain block has
    no shortcut: deleting it uses the parameter-free identity, strided and zero-padded like
    shortcut option A, as Veit et al. (arXiv 1605.06431) delete a layer of a plain network.

    Args:
        block: a :class:`~keras_resnet_lab.layers.BlockBase` layer.
        x: the block's input (symbolic or eager).

    Example:
        >>> y = skip_block(model.get_layer("stage1_block2"), x)
    """
    if not block.plain:
        return block.merge(block.shortcut(x), 0.0)
    return block.merge(identity_shortcut(block, x), 0.0)


def identity_shortcut(block, x):
    """The parameter-free shortcut of ``block``'s shape change (option A of He et al., arXiv
    1512.03385): strided identity with zero-padded channels.

    Args:
        block: a :class:`~keras_resnet_lab.layers.BlockBase` layer (any kind, plain included).
        x: the block's input.

    Raises:
        ValueError: if the block reduces the number of channels.

    Example:
        >>> y = identity_shortcut(plain_model.get_layer("stage2_block1"), x)
    """
    channels = int(x.shape[-1])
    if channels > block.filters:
        raise ValueError(f"block '{block.name}' maps {channels} to {block.filters} channels; "
                         "a parameter-free identity cannot drop channels, so it cannot be "
                         "deleted.")
    if len(x.shape) == 4 and block.strides > 1:
        x = ops.max_pool(x, 1, block.strides, padding="valid")
    if block.filters > channels:
        x = ops.pad(x, ((0, 0),) * (len(x.shape) - 1) + ((0, block.filters - channels),))
    return x


@keras.saving.register_keras_serializable(package="keras_resnet_lab")
class DeletedBlock(keras.layers.Layer):
    """A block with its branch deleted, as one layer of a surgery model (see :func:`skip_block`).

    It wraps (and shares) the original block, so a model made by :func:`drop_blocks` keeps
    unique layer names and saves to ``.keras`` like any other model.

    Args:
        block: the :class:`~keras_resnet_lab.layers.BlockBase` layer whose branch is deleted.

    Example:
        >>> y = DeletedBlock(model.get_layer("stage1_block2"), name="stage1_block2_deleted")(x)
    """

    def __init__(self, block, **kwargs):
        super().__init__(**kwargs)
        if isinstance(block, dict):
            block = keras.saving.deserialize_keras_object(block)
        if not isinstance(block, BlockBase):
            raise ValueError(f"`block` must be a BlockBase layer, got {type(block).__name__}.")
        self.block = block

    def build(self, input_shape):
        if not self.block.built:
            self.block.build(input_shape)
        self.built = True

    def call(self, x):
        return skip_block(self.block, x)

    def compute_output_shape(self, input_shape):
        return self.block.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config["block"] = keras.saving.serialize_keras_object(self.block)
        return config


def run_plan(plan, x, training=False, block_fn=None, skip_fn=None):
    """Run a plan (or a list of :class:`ChainStep`) on ``x``: eagerly, symbolically or traced.

    Args:
        plan: list of :class:`PlanStep` (or :class:`ChainStep`, all run whole).
        x: the input tensor of the first step.
        training: passed to layers that take it.
        block_fn: optional ``block_fn(step, x) -> y`` called instead of the block for every
            block step that is not skipped (analyses pass modified merges).

    Example:
        >>> logits = run_plan(chain_plan(model, drop=["stage1_block2"]), images)
    """
    for item in plan:
        if isinstance(item, ChainStep):
            item = PlanStep(item)
        step = item.step
        if item.skip:
            x = skip_fn(step, x) if skip_fn is not None else skip_block(step.operation, x)
        elif block_fn is not None and step.block is not None:
            x = block_fn(step, x)
        else:
            x = step(x, training=training)
    return x


def _block_steps(steps):
    return [s for s in steps if s.block is not None]


def _resolve(model, names, argument):
    blocks(model)  # a model with blocks (else the error names `model`)
    if isinstance(names, str) or is_int(names):
        names = [names]
    if isinstance(names, (set, frozenset, dict)) or not hasattr(names, "__iter__"):
        raise ValueError(f"`{argument}` must be a list of block names or indices, "
                         f"got {names!r}.")
    names = list(names)
    resolved = []
    for n in names:
        try:
            resolved.append(find_block(model, n).name)
        except ValueError as error:
            raise ValueError(f"`{argument}`: {error}") from None
    duplicates = sorted({n for n in resolved if resolved.count(n) > 1})
    if duplicates:
        raise ValueError(f"`{argument}` names blocks more than once: {duplicates}.")
    return resolved


def _same_shape(step):
    return step.input_shape == step.output_shape


def chain_plan(model, *, drop=(), order=None, repeat=None):
    """The plan of ``model`` with blocks deleted, reordered and/or repeated.

    Args:
        model: a chain model (see :func:`chain_steps`).
        drop: block names or indices whose branch is deleted (see :func:`skip_block`).
        order: optional permutation of all block names/indices: the block run at each
            block position. Only blocks whose input and output shapes are equal may move, and
            only to a place of that same shape.
        repeat: optional ``{block: times}``: run each such block ``times`` times in a row
            (``times`` >= 1 counts every application; the block must keep its shape).

    Example:
        >>> plan = chain_plan(model, drop=["stage1_block2"])
    """
    steps = chain_steps(model)
    drop = set(_resolve(model, drop, "drop"))
    by_position = list(steps)
    if order is not None:
        by_position = _reordered(model, steps, order)
    times = {}
    if repeat is not None and not isinstance(repeat, dict):
        raise ValueError(f"`repeat` must be None or a dict {{block: times}}, got {repeat!r}.")
    for name, n in (repeat or {}).items():
        name = _resolve(model, name, "repeat")[0]
        times[name] = count("times", n)
        for step in _block_steps(steps):
            if step.name == name and not _same_shape(step):
                raise ValueError(
                    f"block '{name}' changes shape {step.input_shape} -> {step.output_shape}; "
                    "only a block whose input and output shapes are equal can be repeated.")
    applications = sum(times.get(s.name, 1) for s in _block_steps(by_position))
    if applications > MAX_COUNT:
        raise ValueError(f"`repeat` {repeat!r} makes {applications:,} block applications, more "
                         f"than the limit of {MAX_COUNT:,} (keras_resnet_lab._checks."
                         "MAX_COUNT; more would take hours to build).")
    plan = []
    for step in by_position:
        n = times.get(step.name, 1) if step.block is not None else 1
        plan.extend(PlanStep(step, step.block is not None and step.name in drop)
                    for _ in range(n))
    return plan


def _reordered(model, steps, order):
    block_steps = _block_steps(steps)
    names = [s.name for s in block_steps]
    if len(set(names)) != len(names):
        raise ValueError(f"model '{model.name}' runs a block more than once; reorder the "
                         "model it was made from instead.")
    order = _resolve(model, order, "order")
    if sorted(order) != sorted(names):
        raise ValueError(f"`order` must list every block of '{model.name}' exactly once "
                         f"({len(names)} blocks: {', '.join(names)}), got {order!r}.")
    by_name = {s.name: s for s in block_steps}
    moved = {}
    for place, new_name in zip(block_steps, order):
        new = by_name[new_name]
        if new is place:
            continue
        for step in (new, place):
            if not _same_shape(step):
                raise ValueError(
                    f"cannot put block '{new.name}' in the place of '{place.name}': block "
                    f"'{step.name}' changes shape {step.input_shape} -> {step.output_shape}; "
                    "only blocks whose input and output shapes are equal may be reordered.")
        if new.input_shape != place.input_shape:
            raise ValueError(
                f"cannot put block '{new.name}' (shape {new.input_shape}) in the place of "
                f"'{place.name}' (shape {place.input_shape}): only blocks of equal shape may "
                "swap.")
        moved[id(place)] = new
    return [moved.get(id(s), s) for s in steps]


def plan_model(model, plan, name=None):
    """A new functional model running ``plan`` on a fresh input; it shares ``model``'s layers.

    Deleted blocks become :class:`DeletedBlock` layers (named ``{block}_deleted``) so that layer
    names stay unique and the model saves to ``.keras``.

    Args:
        model: the chain model the plan was made from.
        plan: list of :class:`PlanStep` (see :func:`chain_plan`).
        name: name of the new model.

    Example:
        >>> lesioned = plan_model(model, chain_plan(model, drop=[0]))
    """
    source = model.inputs[0]
    inputs = keras.Input(shape=tuple(source.shape[1:]), dtype=source.dtype,
                         name=getattr(source, "name", None) or "input")
    used = {}

    def deleted(step, x):
        used[step.name] = used.get(step.name, 0) + 1
        suffix = "" if used[step.name] == 1 else f"_{used[step.name]}"
        return DeletedBlock(step.operation, name=f"{step.name}_deleted{suffix}")(x)

    # training=None: batch norms follow fit/predict, so a surgery model trains normally.
    outputs = run_plan(plan, inputs, training=None, skip_fn=deleted)
    return keras.Model(inputs, outputs, name=text("name", name, allow_none=True)
                       or f"{model.name}_surgery")


def drop_blocks(model, names, name=None):
    """A model with the branches of ``names`` deleted: each keeps only its shortcut.

    The lesion of Veit et al. (arXiv 1605.06431): a deleted residual block computes
    ``merge(shortcut(x), 0)`` (see :func:`skip_block`), a deleted plain block the
    parameter-free identity. The new model shares every layer with ``model`` (training one
    trains the other); no names gives a model equal to the original.

    Args:
        model: a chain model.
        names: block names or 0-based indices (a single one is accepted too).
        name: name of the new model.

    Example:
        >>> lesioned = drop_blocks(cifar_resnet(20), ["stage1_block2", "stage3_block3"])
    """
    dropped = _resolve(model, names, "names")
    return plan_model(model, chain_plan(model, drop=dropped),
                      text_or("name", name, f"{model.name}_drop{len(dropped)}"))


def reorder_blocks(model, order, name=None):
    """A model running the blocks in ``order`` (a permutation of all blocks).

    Only blocks whose input and output shapes are equal may change place, and only with one
    another (Veit et al., arXiv 1605.06431, swap pairs of blocks inside a stage); any other
    move raises ValueError naming the blocks. The layers are shared with ``model``.

    Args:
        model: a chain model whose blocks each run once.
        order: every block name (or index) once, in the new order.
        name: name of the new model.

    Example:
        >>> names = [b.name for b in blocks(model)]
        >>> names[1], names[2] = names[2], names[1]
        >>> swapped = reorder_blocks(model, names)
    """
    return plan_model(model, chain_plan(model, order=order),
                      text_or("name", name, f"{model.name}_reordered"))


def repeat_block(model, block, times, name=None):
    """A model that applies ``block`` ``times`` times in a row (unrolling, weights shared).

    Jastrzebski et al. (arXiv 1710.04773) unroll the last block of a trained ResNet to see
    whether it keeps refining. ``times`` counts every application (1 is the original model);
    the block must keep its input shape.

    Args:
        model: a chain model.
        block: block name or 0-based index.
        times: total number of applications (>= 1).
        name: name of the new model.

    Example:
        >>> unrolled = repeat_block(model, "stage3_block3", times=3)
    """
    info = find_block(model, block)
    times = count("times", times)
    return plan_model(model, chain_plan(model, repeat={info.name: times}),
                      text_or("name", name, f"{model.name}_repeat{times}"))
