"""The composition root: stages and per-subject renderers are chosen in one place, and a broken
stage stops start-up with a message instead of serving a stand-in."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import backend.composition as composition
from backend.checkpoints import CheckpointError
from backend.composition import (RENDERERS, StageSet, StageUnavailableError, UnknownRendererError, open_renderer,
                                 renderer_class)
from backend.pipeline.base import StageError
from backend.render.stage import RenderStage
from backend.subjects import SubjectStore
from test_server_support import REPO, free_tcp_port


class RecordingRenderer:
    """A renderer kind that only records how it was opened."""

    def __init__(self, subject_dir, device):
        self.subject_dir, self.device = subject_dir, device


def _subject(root, name="someone", **info):
    (root / name).mkdir(parents=True)
    (root / name / "subject.json").write_text(json.dumps({"name": name, "version": 1, **info}))
    return root / name


def test_the_renderer_is_the_one_subject_json_names(tmp_path, monkeypatch):
    monkeypatch.setitem(RENDERERS, "recording", f"{__name__}:RecordingRenderer")
    folder = _subject(tmp_path, renderer="recording")
    renderer = open_renderer(folder, "cpu")
    assert isinstance(renderer, RecordingRenderer) and renderer.subject_dir == folder


def test_a_subject_without_a_renderer_field_gets_the_default():
    from backend.render.inference import SubjectRenderer
    from backend.subjects import SHIPPED_SUBJECTS
    assert isinstance(open_renderer(SHIPPED_SUBJECTS / "default", "cpu"), SubjectRenderer)


def test_an_unknown_renderer_kind_names_the_subject_file(tmp_path):
    folder = _subject(tmp_path, renderer="gaussian_splats")
    with pytest.raises(CheckpointError, match=r"subject\.json.*'gaussian_splats'.*subject_nerf"):
        open_renderer(folder, "cpu")
    with pytest.raises(UnknownRendererError):
        renderer_class("gaussian_splats")


def test_the_render_stage_opens_subjects_through_the_composition_roots_factory(tmp_path, monkeypatch):
    monkeypatch.setitem(RENDERERS, "recording", f"{__name__}:RecordingRenderer")
    _subject(tmp_path, "a", renderer="recording")
    _subject(tmp_path, "b", renderer="no_such_kind")
    stages = StageSet("cpu", SubjectStore([tmp_path]))
    assert isinstance(stages.render, RenderStage)
    assert isinstance(stages.render.renderer("a"), RecordingRenderer)
    with pytest.raises(StageError, match="no_such_kind") as err:
        stages.render.renderer("b")
    assert err.value.code == "internal"


@pytest.mark.parametrize("broken", ["motion", "renderer"])
def test_a_broken_stage_fails_when_the_stages_are_built(monkeypatch, broken):
    if broken == "motion":
        monkeypatch.setitem(sys.modules, "backend.motion.stage", None)   # the import raises ImportError
    else:
        monkeypatch.setitem(RENDERERS, "broken", "backend.render.no_such_module:Renderer")
    with pytest.raises(StageUnavailableError, match="motion stage" if broken == "motion" else "'broken' renderer"):
        StageSet("cpu", SubjectStore([]))


def test_emogene_serve_exits_with_the_message_when_the_motion_stage_is_broken(tmp_path):
    code = ("import sys; sys.modules['backend.motion.stage'] = None\n"
            "from backend.cli import main\nsys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "serve", "--bind", f"tcp://127.0.0.1:{free_tcp_port()}",
                           "--jobs-dir", str(tmp_path / "jobs"), "--device", "cpu"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "motion stage cannot be loaded" in proc.stderr and "backend.motion.stage" in proc.stderr
    assert "listening on" not in proc.stdout


def test_the_composition_root_is_cheap_to_import():
    code = "import sys, backend.composition; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


def test_no_stand_in_stage_is_left_in_production_code():
    assert not (REPO / "backend" / "pipeline" / "placeholder.py").exists()
    source = (REPO / "backend" / "composition.py").read_text()
    assert "placeholder" not in source.split('"""', 2)[2].lower()
    assert composition.DEFAULT_RENDERER in RENDERERS
