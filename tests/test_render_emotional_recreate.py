"""train_emotional_subject's model card states the training options that made the shipped weights."""
import sys
from pathlib import Path

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
