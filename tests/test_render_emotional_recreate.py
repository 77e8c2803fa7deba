"""train_emotional_subject's model card states the training options that made the shipped weights."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import train_emotional_subject as script  # noqa: E402


def _summary(**config) -> dict:
    cfg = dict(learning_rate=3.5e-3, final_lr_ratio=0.15, minutes=28.0, steps=20000, threads=1,
               rays_per_step=2048, anneal_by_time=True, **config)
    return {"config": cfg, "steps": 5000, "train_seconds": 1680.0, "device": "cpu",
            "prior": {"init_from": "backend/assets/subjects/mead_m030/nerf", "steps": 7604, "train_seconds": 3480.0}}


def test_recreate_command_names_the_depth_loss_only_when_used():
    with_depth = script._recreate(_summary(landmark_noise=0.015, landmark_depth_weight=0.05), 128)
    without = script._recreate(_summary(landmark_noise=0.015, landmark_depth_weight=0.0), 128)
    assert "--landmark-depth-weight 0.05" in with_depth and "--landmark-noise 0.015" in with_depth
    assert "--landmark-depth-weight" not in without


def test_training_line_names_the_depth_loss():
    line = script._training_lines(_summary(landmark_noise=0.015, landmark_depth_weight=0.05), 10.0)
    assert "landmark depth loss weight 0.05" in line
    assert "landmark depth" not in script._training_lines(_summary(landmark_noise=0.015), 10.0)


def test_upper_face_rays_are_named_in_the_command_and_the_card_only_when_used():
    used = _summary(landmark_noise=0.015, upper_face_ray_share=0.25)
    assert "--upper-face-ray-share 0.25" in script._recreate(used, 128)
    assert "25% of the rays drawn in the brow-and-eye box" in script._training_lines(used, 10.0)
    unused = _summary(landmark_noise=0.015, upper_face_ray_share=0.0)
    assert "upper-face" not in script._recreate(unused, 128)
    assert "brow-and-eye" not in script._training_lines(unused, 10.0)


def test_a_split_landmark_code_is_named_in_the_command_and_the_card():
    split = _summary(landmark_noise=0.015, model={"code_scale": "global", "code_regions": "split"})
    assert "--code-regions split" in script._recreate(split, 128)
    assert "code_regions='split'" in script._training_lines(split, 10.0)
    whole = _summary(landmark_noise=0.015, model={"code_scale": "global"})
    assert "--code-regions" not in script._recreate(whole, 128)


def _checkpoint(folder: Path, step: int, seconds: float) -> Path:
    from backend.render.model import MODEL_KIND, MODEL_VERSION
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nerf.safetensors").write_bytes(b"")
    (folder / "nerf.json").write_text(json.dumps({"kind": MODEL_KIND, "version": MODEL_VERSION, "step": step,
                                                  "train_seconds": seconds}))
    return folder / "nerf"


def test_a_chain_of_runs_is_counted_and_re_created_run_by_run(tmp_path):
    stem = _checkpoint(tmp_path / "asset", 5127, 1800.0)
    earlier = [{"steps": 2477, "train_seconds": 1680.0, "description": "first", "command": "cmd one"},
               {"steps": 5127, "train_seconds": 1800.0, "description": "second", "command": "cmd two"}]
    (tmp_path / "asset" / script.RUNS_FILE).write_text(json.dumps(earlier))
    prior = script._prior_training(str(stem))
    assert prior["steps"] == 7604 and prior["train_seconds"] == 3480.0
    summary = dict(_summary(landmark_noise=0.015, landmark_depth_weight=0.05), prior=prior)
    line = script._training_lines(summary, 10.0)
    assert "12604 steps" in line and "3 runs" in line and "(1) first" in line and "(2) second" in line
    recreate = script._recreate(summary, 128)
    assert "1. `cmd one`" in recreate and "2. `cmd two`" in recreate and "3. `" in recreate
    runs = script.training_runs(summary, 128)
    assert [r["steps"] for r in runs] == [2477, 5127, 5000] and "--landmark-depth-weight 0.05" in runs[-1]["command"]


def test_a_runs_file_that_does_not_match_the_weights_is_refused(tmp_path):
    stem = _checkpoint(tmp_path / "asset", 4000, 1800.0)
    (tmp_path / "asset" / script.RUNS_FILE).write_text(json.dumps([{"steps": 5127, "train_seconds": 1.0,
                                                                     "description": "", "command": ""}]))
    with pytest.raises(ValueError, match="does not describe these weights"):
        script._prior_training(str(stem))


def test_a_grown_head_is_named_in_the_command_and_the_card():
    grown = _summary(landmark_noise=0.015, model={"code_scale": "global", "head_hidden": 128,
                                                  "head_condition_gate": True})
    command = script._recreate(grown, 128)
    assert "--head-hidden 128" in command and "--head-condition-gate" in command
    line = script._training_lines(grown, 10.0)
    assert "head MLP 128 units wide" in line and "head_condition_gate" in line
    plain = _summary(landmark_noise=0.015, model={"code_scale": "global", "head_hidden": None,
                                                  "head_condition_gate": False})
    assert "--head-" not in script._recreate(plain, 128)
    assert "head MLP" not in script._training_lines(plain, 10.0)
