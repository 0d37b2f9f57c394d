"""The lab: one run from nothing to a report that explains skip connections."""

from keras_resnet_lab.lab.pipeline import STEPS, Lab, LabConfig, run_lab

__all__ = ["STEPS", "Lab", "LabConfig", "run_lab"]
