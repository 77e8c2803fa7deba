"""--device is declared once (backend.device) with one default, and every command uses it."""
from __future__ import annotations

import argparse

import pytest

from backend.cli import build_parser
from backend.device import DEFAULT_DEVICE, add_device_argument, resolve_device


def _device_actions(parser: argparse.ArgumentParser, path=()):
    for action in parser._actions:
        if "--device" in action.option_strings:
            yield path, action
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _device_actions(sub, path + (name,))


def test_every_command_declares_device_the_same_way():
    found = dict(_device_actions(build_parser()))
    assert {("serve",), ("demo",), ("train", "ldm"), ("train", "subject"), ("eval", "all"),
            ("eval", "render"), ("eval", "emotion")} <= set(found)
    for path, action in found.items():
        assert action.default == DEFAULT_DEVICE and action.type.__name__ == "device_name", path


@pytest.mark.parametrize("value,ok", [("auto", True), ("CPU", True), ("cuda", True), ("cuda:1", True),
                                      ("gpu", False), ("cuda:x", False), ("", False)])
def test_device_values_are_checked_when_parsing(value, ok, capsys):
    parser = argparse.ArgumentParser()
    add_device_argument(parser)
    if ok:
        assert parser.parse_args(["--device", value]).device == value.lower()
    else:
        with pytest.raises(SystemExit):
            parser.parse_args(["--device", value])
        assert "unknown device" in capsys.readouterr().err


def test_auto_resolves_to_a_device_this_machine_has():
    import torch
    assert resolve_device(DEFAULT_DEVICE).type == ("cuda" if torch.cuda.is_available() else "cpu")
