"""The render package's layering: inference sits above training and never imports it."""
from __future__ import annotations

import subprocess
import sys

import pytest

TRAINING_SIDE = ("backend.render.train", "backend.render.subject_dataset", "backend.render.train_sr",
                 "backend.render.sr_data", "backend.render.prepare")


@pytest.mark.parametrize("module", ["backend.render.inference", "backend.render.stage",
                                    "backend.render.frame_render"])
def test_inference_side_imports_no_training_module(module):
    code = (f"import sys, {module}\n"
            f"print(','.join(m for m in {TRAINING_SIDE!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} pulls in training code: {out.stdout.strip()}"


def test_training_and_inference_share_one_frame_renderer():
    from backend.render import frame_render, inference, train
    assert train.render_frame is frame_render.render_frame is inference.render_frame
    assert train.CHECKPOINT_STEM == inference.CHECKPOINT_STEM == frame_render.CHECKPOINT_STEM
