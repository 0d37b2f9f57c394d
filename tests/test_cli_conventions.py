"""What a command-line user expects: every option's default in --help, no terminal control
codes in a log that is not a terminal."""

import argparse
import os
import subprocess
import sys

import pytest

from keras_resnet_lab.cli import build_parser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWITCHES = (argparse._HelpAction, argparse._StoreTrueAction, argparse._StoreFalseAction,
            argparse._VersionAction)


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_every_option_shows_its_default_in_help(command):
    parser = _subparsers()[command]
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if not action.option_strings or isinstance(action, SWITCHES) or action.required:
            continue
        formatted = parser._get_formatter()._get_help_string(action) or ""
        assert "default" in formatted.lower(), (command, action.option_strings)
        assert action.option_strings[-1] in text


def test_a_training_log_that_is_not_a_terminal_has_no_control_codes(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "keras_resnet_lab_cli", "train", "--image-size", "8",
         "--epochs", "2", "--batch-size", "64", "--recipe", "general",
         "--out", str(tmp_path / "run")], env=env, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = proc.stdout + proc.stderr
    for code in (b"\x1b[", b"\r", b"\x08"):
        assert code not in log, (code, log[:300])
    lines = proc.stdout.decode().splitlines()
    assert sum("val_accuracy" in line for line in lines) == 2  # one line per epoch
