"""scripts/probe_subject_candidates.py: a candidate is the shipped subject with only its NeRF swapped, and the
reported clip is refused (the rendering itself is eval emotion's, tested there)."""
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("probe_subject_candidates", REPO / "scripts" / "probe_subject_candidates.py")
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)


def _folder(path: Path, tag: str) -> Path:
    path.mkdir(parents=True)
    for name in ("subject.json", "track.npz", "background.png", "nerf.safetensors", "nerf.json", "MODEL_CARD.md"):
        (path / name).write_text(f"{tag}:{name}")
    return path


def test_a_candidate_is_the_shipped_folder_with_its_own_nerf(tmp_path):
    shipped = _folder(tmp_path / "shipped" / "mead_m030", "shipped")
    weights = _folder(tmp_path / "run", "run")
    root = script.candidate_root(tmp_path / "out", "f1", "mead_m030", shipped, weights)
    made = root / "mead_m030"
    for name in ("subject.json", "track.npz", "background.png"):
        assert (made / name).read_text() == f"shipped:{name}"
    for name in ("nerf.safetensors", "nerf.json"):
        assert (made / name).read_text() == f"run:{name}"
    assert not (made / "MODEL_CARD.md").exists()
    # made again, it is made afresh
    (made / "stale.npz").write_text("x")
    script.candidate_root(tmp_path / "out", "f1", "mead_m030", shipped, weights)
    assert not (made / "stale.npz").exists()


def test_a_candidate_without_weights_is_named(tmp_path):
    shipped = _folder(tmp_path / "shipped" / "mead_m030", "shipped")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="nerf.safetensors"):
        script.candidate_root(tmp_path / "out", "x", "mead_m030", shipped, tmp_path / "empty")


def test_the_reported_clip_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        script.main(["a=b", "--subject", "mead_m030", "--audio", "x/andrew_clip_1.wav", "--out", str(tmp_path)])
    assert "reported clip" in capsys.readouterr().err
