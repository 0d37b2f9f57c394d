"""Argument validation shared by the data modules: ValueErrors that name argument and value."""

from __future__ import annotations

import numbers

import numpy as np


def is_int(value) -> bool:
    """True for Python/NumPy integers, False for bools and everything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_bool(value) -> bool:
    """True for Python and NumPy booleans."""
    return isinstance(value, (bool, np.bool_))


def check_int(name: str, value, minimum: int, allow_none: bool = False) -> None:
    """Raise ValueError unless ``value`` is an int >= ``minimum`` (or None if allowed)."""
    if allow_none and value is None:
        return
    if not (is_int(value) and value >= minimum):
        prefix = "None or " if allow_none else ""
        raise ValueError(f"{name} must be {prefix}an int >= {minimum}, got {value!r}.")


def check_bool(name: str, value, allow_none: bool = False) -> None:
    """Raise ValueError unless ``value`` is True or False (or None if allowed)."""
    if allow_none and value is None:
        return
    if not is_bool(value):
        prefix = "None, " if allow_none else ""
        raise ValueError(f"{name} must be {prefix}True or False, got {value!r}.")
