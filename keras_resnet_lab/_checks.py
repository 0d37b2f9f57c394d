"""Argument checks for the whole package: one ValueError style that names the argument, the
value it got and what is allowed. Each check returns the (normalized) value.

Example:
    >>> positive_int("filters", 0)
    Traceback (most recent call last):
    ...
    ValueError: `filters` must be a positive integer, got 0.
"""

import math
import numbers

import numpy as np


def is_int(value):
    """True for Python/NumPy integers, False for bools and everything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def positive_int(name, value):
    """Return ``value`` as an int, or raise ValueError unless it is an integer >= 1."""
    if not is_int(value) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)


def int_at_least(name, value, minimum, allow_none=False):
    """Return ``value`` as an int >= ``minimum`` (or None when ``allow_none``), else raise."""
    if allow_none and value is None:
        return None
    if not is_int(value) or value < minimum:
        prefix = "None or " if allow_none else ""
        raise ValueError(f"`{name}` must be {prefix}an integer >= {minimum}, got {value!r}.")
    return int(value)


def boolean(name, value, allow_none=False):
    """Return ``value`` as a bool (True/False, or None when ``allow_none``), else raise."""
    if allow_none and value is None:
        return None
    if not isinstance(value, (bool, np.bool_)):
        prefix = "None, " if allow_none else ""
        raise ValueError(f"`{name}` must be {prefix}True or False, got {value!r}.")
    return bool(value)


def one_of(name, value, allowed):
    """Return ``value`` if it is one of ``allowed``, else raise ValueError listing them."""
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"`{name}` must be one of {options}; got {value!r}.")
    return value


def number_in(name, value, low=None, high=None, low_open=False, high_open=False):
    """Return ``value`` as a float if it is finite and lies in the given interval, else raise."""
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)
            or not math.isfinite(value)):
        raise ValueError(f"`{name}` must be a finite number, got {value!r}.")
    value = float(value)
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        raise ValueError(f"`{name}` must lie in {left}{lo}, {hi}{right}, got {value!r}.")
    return value
