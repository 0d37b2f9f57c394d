"""The package's argument checks (:mod:`keras_resnet_lab._checks`), under their old import path."""

from keras_resnet_lab._checks import (  # noqa: F401
    boolean,
    int_at_least,
    is_int,
    number_in,
    one_of,
    positive_int,
)
