"""Argument checks for the whole package: one ValueError style that names the argument, the
value it got and what is allowed. Each check returns the (normalized) value.

Every check raises ``ValueError``, wrong types included (``"8"`` for an integer, ``"no"`` for a
boolean): the message names the argument, the value and what is allowed. Integers are Python
or NumPy integers (``np.int64(20)`` is accepted wherever ``20`` is) and never booleans;
booleans are ``True``/``False`` (or ``np.bool_``) and never strings or numbers; numbers are
finite unless said otherwise (the message says "NaN" or "infinite").

Two guards keep impossible requests from starting: :data:`MAX_COUNT` bounds every count that
multiplies the work (blocks, applications of a block, steps, branches, draws, samples), and
:func:`memory` refuses, before anything is allocated, a model whose float32 parameters and
activations at batch 1 exceed :data:`MEMORY_LIMIT` bytes (default: half the machine's
memory).

Example:
    >>> positive_int("filters", 0)
    Traceback (most recent call last):
    ...
    ValueError: `filters` must be a positive integer, got 0.
"""

import math
import numbers
import os

import numpy as np

#: The most blocks a network may have, and the most repetitions one argument may ask for
#: (applications of a block, steps of a stack, branches, draws, samples per length, depths):
#: ResNet-1202 has 600 blocks; a request beyond this would run for hours.
MAX_COUNT = 10_000

#: Bytes a model's float32 parameters and batch-1 activations may take (see :func:`memory`).
#: None: half the machine's physical memory (32 GiB when it cannot be read): training needs
#: at least as much again for the gradients and the optimizer's state, so a model beyond
#: that cannot be trained on the machine. Set it (tests do) to refuse smaller models.
MEMORY_LIMIT = None

_FALLBACK_MEMORY = 64 * 2 ** 30

#: The largest magnitude :func:`number_in` accepts: float32's (numbers become float32 weights).
FLOAT32_MAX = float(np.finfo(np.float32).max)


def is_int(value):
    """True for Python/NumPy integers, False for bools and everything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_bool(value):
    """True for ``True``/``False`` and NumPy booleans."""
    return isinstance(value, (bool, np.bool_))


def shown(value):
    """``repr(value)``, with NaN and infinities spelled out, shortened when long."""
    if isinstance(value, numbers.Real) and not is_bool(value):
        try:
            if math.isnan(value):
                return "NaN"
            if math.isinf(value):
                return f"{'-' if value < 0 else ''}infinite ({value!r})"
        except (TypeError, ValueError, OverflowError):
            pass
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def integer(name, value, minimum=None, maximum=None, allow_none=False, what=None):
    """Return ``value`` as an int in ``[minimum, maximum]`` (or None when ``allow_none``).

    ``what`` says what the maximum limits (the message cites it when ``value`` is too large).
    """
    if allow_none and value is None:
        return None
    prefix = "None or " if allow_none else ""
    if not is_int(value):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"`{name}` must be {prefix}an integer{bound}, got {shown(value)}.")
    value = int(value)
    if minimum is not None and value < minimum:
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"`{name}` must be {prefix}{wanted}, got {shown(value)}.")
    if maximum is not None and value > maximum:
        why = f" ({what})" if what else ""
        raise ValueError(f"`{name}` must be at most {maximum:,}{why}, got {value:,}.")
    return value


#: TensorFlow's operations take their sizes (strides, dilations, kernel sizes) as int32.
INT32_MAX = 2 ** 31 - 1


def positive_int(name, value, maximum=None, what=None):
    """Return ``value`` as an int >= 1 (and <= ``maximum``), or raise ValueError."""
    return integer(name, value, 1, maximum, what=what)


def int_at_least(name, value, minimum, allow_none=False):
    """Return ``value`` as an int >= ``minimum`` (or None when ``allow_none``), else raise."""
    return integer(name, value, minimum, allow_none=allow_none)


def count(name, value, minimum=1):
    """Return ``value`` as an int in ``[minimum, MAX_COUNT]``: a number of blocks, steps,
    repetitions, draws or samples (work grows with it)."""
    return integer(name, value, minimum, MAX_COUNT,
                   what="the limit on blocks and repetitions, keras_resnet_lab._checks."
                        "MAX_COUNT; more would run for hours")


def seed(name, value, allow_none=False):
    """Return ``value`` as a random seed: an int >= 0 (or None when ``allow_none``)."""
    return integer(name, value, 0, 2 ** 63 - 1, allow_none=allow_none,
                   what="a 64-bit seed")


def boolean(name, value, allow_none=False):
    """Return ``value`` as a bool (True/False, or None when ``allow_none``), else raise."""
    if allow_none and value is None:
        return None
    if not is_bool(value):
        prefix = "None, " if allow_none else ""
        raise ValueError(f"`{name}` must be {prefix}True or False, got {shown(value)}.")
    return bool(value)


def same(value, option):
    """Whether ``value`` is the option ``option``, types considered (``True`` is not ``1``,
    ``"1"`` is not ``1``, ``np.int64(20)`` is ``20``)."""
    if option is None or value is None:
        return option is value
    if is_bool(option) or is_bool(value):
        return is_bool(option) and is_bool(value) and bool(option) == bool(value)
    if is_int(option):
        return is_int(value) and int(value) == option
    if isinstance(option, str):
        return isinstance(value, str) and value == option
    if isinstance(value, np.ndarray):
        return False
    try:
        return bool(value == option)
    except (TypeError, ValueError):
        return False


def one_of(name, value, allowed):
    """Return the option of ``allowed`` that ``value`` is, else raise ValueError listing them."""
    for option in allowed:
        if same(value, option):
            return option
    options = ", ".join(repr(a) for a in allowed)
    raise ValueError(f"`{name}` must be one of {options}; got {shown(value)}.")


def text(name, value, allow_none=False):
    """Return ``value`` if it is a string (or None when ``allow_none``), else raise."""
    if (allow_none and value is None) or isinstance(value, str):
        return value
    raise ValueError(f"`{name}` must be {'None or ' if allow_none else ''}a string, got "
                     f"{shown(value)}.")


def text_or(name, value, default):
    """Return ``value`` (a string), or ``default`` when it is None or empty; else raise."""
    return text(name, value, allow_none=True) or default


def number_in(name, value, low=None, high=None, low_open=False, high_open=False):
    """Return ``value`` as a float if it is finite and lies in the given interval, else raise.

    NaN and infinities are refused with a message that says so, and so are numbers beyond
    float32's range (:data:`FLOAT32_MAX`): they become float32 weights and settings.
    """
    if is_bool(value) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{name}` must be a finite number, got {shown(value)}.")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float
        finite = False
    if not finite:
        raise ValueError(f"`{name}` must be a finite number, got {shown(value)}.")
    value = float(value)
    if abs(value) > FLOAT32_MAX:
        raise ValueError(f"`{name}` must be a finite float32 number (|{name}| <= "
                         f"{FLOAT32_MAX:.4g}), got {value!r}.")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        raise ValueError(f"`{name}` must lie in {left}{lo}, {hi}{right}, got {value!r}.")
    return value


def finite(name, value):
    """Return ``value`` as a float if it is a finite number (the message names NaN/inf)."""
    return number_in(name, value)


def sequence(name, value, allow_empty=False, single=None):
    """Return ``value`` (a list, tuple, range or 1-D array) as a list; refuse strings, sets,
    dicts and other types, and an empty sequence unless ``allow_empty``.

    ``single`` is a predicate: a value it accepts is wrapped as a one-item list.
    """
    if single is not None and single(value):
        return [value]
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if not isinstance(value, (list, tuple, range)):
        raise ValueError(f"`{name}` must be a list or tuple, got {type(value).__name__} "
                         f"{shown(value)}.")
    if not value and not allow_empty:
        raise ValueError(f"`{name}` must not be empty, got {shown(value)}.")
    return list(value)


def int_list(name, value, minimum=None, maximum=None, allow_empty=False, what=None):
    """Return ``value`` (one integer, or a sequence of them) as a list of ints in
    ``[minimum, maximum]``."""
    values = sequence(name, value, allow_empty=allow_empty, single=is_int)
    return [integer(name, v, minimum, maximum, what=what) for v in values]


def shape(name, value):
    """Return ``value`` as a tuple of positive ints (None for a size left open): a tensor
    shape without the batch axis."""
    dims = sequence(name, value)
    for d in dims:
        if d is not None and (not is_int(d) or d < 1):
            raise ValueError(f"`{name}` must be a non-empty tuple of positive integers (or None "
                             f"for a size left open), got {shown(value)}.")
    return tuple(None if d is None else int(d) for d in dims)


def labels(name, value, classes, n=None):
    """Return class labels as an int64 array of values in ``[0, classes)``.

    Whole-number floats are accepted (``3.0``); fractional labels, NaN, infinities, labels
    outside the range and non-numeric arrays are refused (nothing is truncated). ``classes``
    None leaves the range open above. With ``n`` the array must hold ``n`` labels.
    """
    try:
        y = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`{name}` labels must be an array of integers, got "
                         f"{type(value).__name__}: {error}") from None
    if y.dtype == object or not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise ValueError(f"`{name}` labels must be integers, got an array of dtype {y.dtype}.")
    if y.dtype == bool or np.issubdtype(y.dtype, np.complexfloating):
        raise ValueError(f"`{name}` labels must be integers, got an array of dtype {y.dtype}.")
    if y.ndim != 1 or (n is not None and len(y) != n):
        raise ValueError(f"`{name}` labels must be one integer per example"
                         f"{'' if n is None else f' ({n})'}, got shape {y.shape}.")
    if np.issubdtype(y.dtype, np.floating):
        bad = ~np.isfinite(y)
        if bad.any():
            raise ValueError(f"`{name}` labels contain NaN or infinite values "
                             f"(first at index {int(np.argmax(bad))}).")
        fractional = y != np.round(y)
        if fractional.any():
            i = int(np.argmax(fractional))
            raise ValueError(f"`{name}` labels must be whole numbers (class indices), got "
                             f"{y[i].item()!r} at index {i}: fractional labels are refused, not "
                             "truncated.")
    outside = (y < 0) if classes is None else (y < 0) | (y >= classes)
    if outside.any():
        i = int(np.argmax(outside))
        where = "[0, inf)" if classes is None else (f"[0, {classes}) (the model has {classes} "
                                                     "classes)")
        raise ValueError(f"`{name}` labels must lie in {where}, got {y[i].item()!r} at index "
                         f"{i}.")
    return y.astype(np.int64)


#: Another class labels check's name, for :func:`examples` (whose ``labels`` argument hides it).
_class_labels = labels


def examples(name, value, *, labels="classes", classes=None, shape=None, model_name=None,
             model_kind="model", inputs="inputs", dataset=None, one_hot=False, finite=True,
             dtype=np.float32, single=False):
    """Return examples as numpy arrays: ``(x, y)``, inputs and one label each, or with
    ``labels=None`` the inputs ``x`` alone. The one check of the package's data arguments.

    Args:
        name: the argument's name; every message names it.
        value: ``(x, y)`` (a tuple or list of two arrays), or the inputs (``labels=None``).
        labels: ``"classes"``: class indices, whole numbers in ``[0, classes)`` (see
            :func:`labels`; returned as int64); ``"any"``: only their count is checked (one
            label, or one-hot row, per example; returned as given); None: inputs alone.
        classes: the number of classes (None leaves the range open above).
        shape: the shape of one example (None for a size left open), e.g. a model's input
            shape; ``model_name`` is the model the message cites.
        model_kind: what the message calls ``model_name``'s owner (``"model"``, ``"layer"``).
        inputs: what the messages call the inputs (``"images"``, ``"inputs"``).
        dataset: what else the argument may be, named in the message when it is no pair
            (``"a batched tf.data.Dataset of (x, y)"``); the caller handles it.
        one_hot: turn one-hot label rows (``classes`` columns) and a column of labels into
            class indices.
        finite: refuse NaN and infinite inputs.
        dtype: the inputs' dtype (None keeps theirs).
        single: the inputs may be one example without its batch axis (one is added).

    Example:
        >>> examples("data", ([[0.5], [1.0]], [1, 3]), classes=2)
        Traceback (most recent call last):
        ...
        ValueError: `data` labels must lie in [0, 2) (the model has 2 classes), got 3 at index 1.
    """
    pair = labels is not None
    if pair and not (isinstance(value, (tuple, list)) and len(value) == 2):
        kind = "integer labels" if labels == "classes" else "labels"
        alternative = f" or {dataset}" if dataset else ""
        raise ValueError(f"`{name}` must be a pair (x, y) of arrays ({inputs}, {kind})"
                         f"{alternative}, got {type(value).__name__}.")
    raw = value[0] if pair else value
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite values: refused below
            x = np.asarray(raw, dtype=dtype)
        y = np.asarray(value[1]) if pair else None
    except (TypeError, ValueError) as error:
        what = "a pair (x, y) of numeric arrays" if pair else "a numeric array"
        raise ValueError(f"`{name}` must be {what}, got {type(raw).__name__}: {error}") \
            from None
    subject = f"`{name}` {inputs}" if pair else f"`{name}`"
    if single and shape is not None and x.ndim == len(shape):
        x = x[None]
    if shape is not None and (x.ndim != len(shape) + 1 or any(
            e is not None and e != g for e, g in zip(shape, x.shape[1:]))):
        wanted = "(N, " + ", ".join("?" if e is None else str(e) for e in shape) + ")"
        target = (f"the input of {model_kind} '{model_name}'" if model_name
                  else "the expected input")
        hint = ""
        if len(shape) == 3 and x.ndim == 4 and shape[-1] == x.shape[-1] and None not in shape:
            hint = (f" Resize them first, e.g. keras_resnet_lab.vis.resize_images("
                    f"{'x' if pair else name}, {shape[0]}, {shape[1]}).")
        raise ValueError(f"{subject} must have shape {wanted} to match {target}; got "
                         f"{tuple(np.shape(raw))}. {inputs.capitalize()} of another size are "
                         f"rejected, not resized.{hint}")
    if pair:
        if one_hot and y.ndim == 2 and y.dtype != object:
            if y.shape[1] == 1:
                y = y[:, 0]
            elif classes is not None and y.shape[1] == classes:
                y = y.argmax(axis=-1)
        if x.ndim == 0 or y.ndim == 0:
            raise ValueError(f"`{name}` must be (x, y) arrays with one row per example, got "
                             f"x.shape={x.shape}, y.shape={y.shape}.")
        if len(x) != len(y):
            raise ValueError(f"`{name}` has {len(x)} {inputs} and {len(y)} labels: {name} must "
                             f"be (x, y) with the same number of examples (x.shape={x.shape}, "
                             f"y.shape={y.shape}).")
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"`{name}` is empty: give at least one {inputs.removesuffix('s')}.")
    if finite and not np.all(np.isfinite(x)):
        raise ValueError(f"{subject} {'contain' if pair else 'contains'} NaN or infinite "
                         "values.")
    if not pair:
        return x
    if labels == "classes":
        y = _class_labels(name, y, classes, n=len(x))
    return x, y


def memory_limit():
    """The byte limit of :func:`memory`: :data:`MEMORY_LIMIT`, else half the machine's memory."""
    if MEMORY_LIMIT is not None:
        return int(MEMORY_LIMIT)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_MEMORY // 2


def _bytes(n):
    if n >= 1024 ** 6:  # exabytes and beyond, also for ints too large for a float
        digits = str(int(n))
        return f"{digits[0]}.{digits[1:3]}e{len(digits) - 1} bytes"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def memory(what, parameters, activations, arguments=None):
    """Refuse, before anything is allocated, something whose float32 ``parameters`` and
    ``activations`` (for one example) take more than :func:`memory_limit` bytes.

    Args:
        what: what would be built (``"model 'resnet50'"``).
        parameters: estimated number of parameters.
        activations: estimated number of activation values for a batch of 1.
        arguments: optional ``{argument: value}`` that set the size; the message lists them.

    Example:
        >>> memory("model 'huge'", 10 ** 12, 0)
        Traceback (most recent call last):
        ...
        ValueError: model 'huge' needs about 3.6 TiB in float32 ...
    """
    detail = (f"in float32 ({int(parameters):,} parameters and {int(activations):,} "
              "activation values for one example)")
    return memory_bytes(what, 4 * (int(parameters) + int(activations)), detail, arguments)


def memory_bytes(what, needed, detail="", arguments=None):
    """Refuse something that needs more than :func:`memory_limit` bytes (``needed``); the
    message gives the figure, ``detail`` and the ``arguments`` that set the size."""
    limit = memory_limit()
    if needed <= limit:
        return needed
    listed = ""
    if arguments:
        listed = "; reduce " + ", ".join(f"{k}={shown(v)}" for k, v in arguments.items())
    raise ValueError(f"{what} needs about {_bytes(needed)}{' ' + detail if detail else ''}, "
                     f"more than the {_bytes(limit)} memory limit (half the machine's memory, "
                     f"or keras_resnet_lab._checks.MEMORY_LIMIT){listed}.")


def keras_object(name, value, getter, allow_none=True):
    """Return ``getter(value)`` (``keras.activations.get`` ...), raising a ValueError that
    names the argument when Keras cannot interpret ``value``.

    Identifiers are names, configuration dicts, callables and Keras objects (or None when
    ``allow_none``); numbers, booleans and arrays are refused (Keras would turn a number into
    a constant that fails only later).
    """
    if (value is None and not allow_none) or isinstance(value, (numbers.Number, np.ndarray,
                                                               np.bool_, bytes)):
        raise ValueError(f"`{name}` must be {'None, ' if allow_none else ''}a name, a config "
                         f"dict or a Keras object, got {shown(value)}.")
    try:
        return getter(value)
    except Exception as error:  # Keras raises many kinds for an identifier it cannot read
        raise ValueError(f"`{name}` cannot be interpreted: got {shown(value)} ({error})") \
            from None


def keras_model(name, value):
    """Return ``value`` if it is a functional Keras model (one with ``inputs``), else raise."""
    import keras

    if not isinstance(value, keras.Model) or not getattr(value, "inputs", None):
        raise ValueError(f"`{name}` must be a functional keras.Model, got "
                         f"{type(value).__name__}.")
    return value


def finite_outputs(model, x, name="model"):
    """Refuse a model whose outputs on ``x`` are NaN or infinite (diverged or corrupt
    weights): every number computed from it would be meaningless."""
    out = np.asarray(model(x, training=False))
    if not np.all(np.isfinite(out)):
        kind = "NaN" if np.isnan(out).any() else "infinite"
        raise ValueError(f"`{name}` '{model.name}' outputs {kind} values (not finite) on the "
                         "given inputs: its weights diverged or are corrupt; refused.")
    return out
