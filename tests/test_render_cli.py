"""Render commands and stage: bad input gets a clear message (no training needed)."""
from __future__ import annotations

import pytest

from backend.cli import main
from backend.pipeline.base import StageError


def test_prepare_subject_names_a_missing_video(tmp_path, capsys):
    assert main(["prepare-subject", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "s")]) == 2
    assert "missing.mp4 not found" in capsys.readouterr().out


def test_train_subject_on_an_unprepared_folder_says_what_to_run(tmp_path, capsys):
    assert main(["train", "subject", "--subject", str(tmp_path), "--minutes", "0.1"]) == 2
    assert "prepare-subject" in capsys.readouterr().out


def test_render_stage_unknown_subject_is_a_stage_error(tmp_path):
    from backend.render.stage import RenderStage
    from backend.subjects import SubjectStore
    stage = RenderStage("cpu", SubjectStore([tmp_path]))
    with pytest.raises(StageError) as err:
        stage.renderer("nobody-here")
    assert err.value.code == "unknown_subject"


def test_shipped_default_subject_loads_and_renders_a_plate():
    """The committed default subject renders at once on a fresh checkout (no training)."""
    import numpy as np

    from backend.render.inference import SubjectRenderer
    from backend.subjects import SHIPPED_SUBJECTS
    path = SHIPPED_SUBJECTS / "default"
    if not (path / "nerf.json").is_file():
        pytest.skip("default subject weights not built yet (scripts/train_default_subject.py)")
    renderer = SubjectRenderer(path)
    track = np.load(path / "track.npz")
    i = renderer.info["split"]["heldout"][0]
    cond = renderer.conditions(track["landmarks"][i:i + 1], track["rotation"][i:i + 1], track["translation"][i:i + 1])
    camera = renderer.camera_for(None, (48, 48))
    plate = renderer.render(camera, cond.conditions, 0)
    assert plate.shape == (48, 48, 4)
    alpha = plate[..., 3]
    assert (alpha > 128).mean() > 0.3 and (alpha < 10).mean() > 0.1   # a person in the middle, clear sides
