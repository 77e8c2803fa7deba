"""``emogene eval emotion``'s command line and render cache (backend/commands/eval_emotion.py,
backend/evaluation/emotion_report.py): ``--seeds`` is parsed and bad values rejected by name, and the cache of
rendered takes is keyed on the motion draw and on the *contents* of the subject's weights, so a candidate subject
folder never reuses a shipped subject's plates."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.commands import eval_emotion
from backend.evaluation.emotion_report import cache_path
from backend.evaluation.plate_emotion import PlateEvalConfig

REPO = Path(__file__).resolve().parents[1]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    eval_emotion.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_are_the_plate_configs_and_the_help_states_them():
    config = eval_emotion.config_from_args(_args())
    defaults = PlateEvalConfig()
    assert config.plates.seeds == defaults.seeds and len(defaults.seeds) >= 3
    assert (config.plates.frames, config.plates.frames_other) == (defaults.frames, defaults.frames_other)
    from backend.evaluation.emotion_report import DEFAULT_JUDGE
    assert eval_emotion.HELP_DEFAULTS == {"seeds": ",".join(map(str, defaults.seeds)), "frames": defaults.frames,
                                          "frames_other": defaults.frames_other,
                                          "judge_neutral_bias": DEFAULT_JUDGE.neutral_bias,
                                          "judge_seeds": ",".join(map(str, DEFAULT_JUDGE.member_seeds)),
                                          "judge_pose_copies": DEFAULT_JUDGE.augment_pose}
    assert config.cache is not None
    assert config.judge == DEFAULT_JUDGE


def test_judge_options_reproduce_earlier_sessions_judges_and_reject_bad_values(capsys):
    from backend.evaluation.emotion_report import DEFAULT_JUDGE, SESSION8_JUDGE, TALKING_HEADS_JUDGE, \
        reproduce_command
    old = eval_emotion.config_from_args(_args("--judge-neutral-bias", "0", "--judge-pose-copies", "0"))
    s9 = eval_emotion.config_from_args(_args("--judge-pose-copies", "0"))
    new = eval_emotion.config_from_args(_args("--judge-neutral-bias", str(TALKING_HEADS_JUDGE.neutral_bias)))
    assert old.judge == SESSION8_JUDGE and s9.judge == TALKING_HEADS_JUDGE and TALKING_HEADS_JUDGE.neutral_bias > 0
    assert new.judge == DEFAULT_JUDGE and DEFAULT_JUDGE.augment_pose > 0
    assert "--judge-pose-copies 0" in reproduce_command(s9) and "--judge-neutral-bias" not in reproduce_command(s9)
    with pytest.raises(ValueError, match="--judge-pose-copies"):
        eval_emotion.config_from_args(_args("--judge-pose-copies", "-1"))
    other = old if old.judge != eval_emotion.config_from_args(_args()).judge else new
    assert f"--judge-neutral-bias {other.judge.neutral_bias:g}" in reproduce_command(other)
    assert "--judge-neutral-bias" not in reproduce_command(eval_emotion.config_from_args(_args()))
    for bad in ("nan", "inf", "11"):
        with pytest.raises(ValueError, match="--judge-neutral-bias"):
            eval_emotion.config_from_args(_args("--judge-neutral-bias", bad))
    assert eval_emotion.run(_args("--judge-neutral-bias", "nan")) == 2
    assert "--judge-neutral-bias" in capsys.readouterr().err


def test_seeds_are_parsed_and_bad_ones_rejected_by_name(capsys):
    config = eval_emotion.config_from_args(_args("--seeds", "4,1", "--frames", "18", "--no-cache"))
    assert config.plates.seeds == (4, 1) and config.plates.frames == 18 and config.cache is None
    for bad in ("a,b", "=-1", "0,0", "=", "1.5"):
        argv = [f"--seeds{bad}"] if bad.startswith("=") else ["--seeds", bad]
        with pytest.raises(ValueError, match="--seeds"):
            eval_emotion.config_from_args(_args(*argv))
    assert eval_emotion.run(_args("--seeds", "0,x")) == 2
    assert "--seeds '0,x'" in capsys.readouterr().err


def test_the_command_module_stays_cheap_to_import():
    code = "import sys, backend.commands.eval_emotion; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _subject(folder: Path, weights: bytes) -> Path:
    folder.mkdir(parents=True)
    (folder / "subject.json").write_text("{}")
    (folder / "nerf.safetensors").write_bytes(weights)
    (folder / "MODEL_CARD.md").write_text("card")
    return folder


def test_cache_key_changes_with_the_draw_and_with_the_weights_contents(tmp_path):
    config = PlateEvalConfig()
    shipped = _subject(tmp_path / "shipped" / "mead_m030", b"\x01" * 4096)
    key = lambda folder, seed, cfg=config: cache_path(tmp_path / "cache", "mead_m030", folder, cfg, seed, "cpu")
    assert key(shipped, 0) == key(shipped, 0)
    assert key(shipped, 0) != key(shipped, 1)
    assert key(shipped, 1) == key(shipped, 1, PlateEvalConfig(seeds=(1,)))       # a draw is the same draw in any run
    assert key(shipped, 0) != key(shipped, 0, PlateEvalConfig(frames=18))
    # a candidate: same name, same file size, even the same mtime -- different weights
    candidate = _subject(tmp_path / "candidate" / "mead_m030", b"\x02" * 4096)
    stat = (shipped / "nerf.safetensors").stat()
    os.utime(candidate / "nerf.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert key(candidate, 0) != key(shipped, 0)
    # the same weights under another folder: the same plates
    copy = _subject(tmp_path / "copy" / "mead_m030", b"\x01" * 4096)
    assert key(copy, 0) == key(shipped, 0)
    # weights rewritten in place with the mtime restored: a new key in the same process too
    before = key(shipped, 0)
    (shipped / "nerf.safetensors").write_bytes(b"\x03" * 4096)
    os.utime(shipped / "nerf.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert key(shipped, 0) != before
    # a report next to the weights does not change a plate
    after = key(shipped, 0)
    (shipped / "MODEL_CARD.md").write_text("a longer card")
    (shipped / "metrics.json").write_text("{}")
    assert key(shipped, 0) == after


def test_auto_device_shares_the_render_cache_key_of_the_device_it_picks(tmp_path):
    """`eval all` passes the resolved device; `eval emotion --device auto` must land on the same cache file."""
    from backend.device import resolve_device

    auto = eval_emotion.config_from_args(_args("--device", "auto"))
    picked = eval_emotion.config_from_args(_args("--device", str(resolve_device("auto"))))
    assert auto.device == picked.device == str(resolve_device("auto"))
    subject = tmp_path / "subject"
    subject.mkdir()
    (subject / "nerf.safetensors").write_bytes(b"weights")
    key = lambda config, device: cache_path(tmp_path, "s", subject, config.plates, 0, device)   # noqa: E731
    assert key(auto, auto.device) == key(picked, picked.device)
    assert key(auto, "cpu") != key(auto, "cuda")          # plates rendered elsewhere are another cache file
