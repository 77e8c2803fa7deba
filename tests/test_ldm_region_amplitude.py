"""The LDM fit's amplitude options: each face region scaled to its own real level-3 size (the shipped recipe's
region balance), the image-plane amplitude and the depth switch. Real-data tests skip without ../shared/data."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.data.neutral_reference import OWN_NEUTRAL
from backend.motion.ldm_training import (NON_NEUTRAL, LDMFitConfig, fit_fields, identity_basis_from_clips,
                                         mean_point_distance, motion_directions, region_indices, speaker_targets)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def targets(prepared_tracks):
    from backend.motion.tracks_data import load_clips
    clips = load_clips(prepared_tracks)
    cfg = LDMFitConfig()
    out = speaker_targets(clips, identity_basis_from_clips(clips, cfg), cfg)
    if not any(t.reference_kind == OWN_NEUTRAL for t in out.values()):
        pytest.skip("no MEAD speaker filmed neutral in the tracks")
    return out, motion_directions(clips, cfg.smooth_components)


def _real(targets, emotion, key):
    rows = [getattr(t, key)[emotion] for t in targets.values()
            if emotion in getattr(t, key) and t.reference_kind == OWN_NEUTRAL]
    return rows


def test_region_groups_cover_every_landmark_once():
    idx = np.concatenate(list(region_indices().values()))
    assert sorted(idx.tolist()) == list(range(68))


def test_per_region_amplitude_matches_each_regions_real_size(targets):
    """Every region of every field is ``amplitude`` x the real level-3 size of that region (mean over the speakers
    filmed neutral), so the whole field keeps the global amplitude; the shipped recipe's single factor instead
    leaves brows over- and the mouth under-represented (contempt / fear fields were 70 % brow energy)."""
    t, smoothing = targets
    cfg = LDMFitConfig(amplitude=0.9, amplitude_per_region=True)
    fields, _ = fit_fields(t, smoothing, cfg)
    glob, _ = fit_fields(t, smoothing, LDMFitConfig(amplitude=0.9, amplitude_per_region=False))
    for k, emotion in enumerate(NON_NEUTRAL):
        regions = _real(t, emotion, "real_level3_regions")
        if not regions:
            continue
        for g, idx in region_indices().items():
            want = 0.9 * np.mean([r[g] for r in regions])
            assert mean_point_distance(fields[k][idx]) == pytest.approx(want, rel=1e-6), (emotion, g)
        total = 0.9 * np.mean(_real(t, emotion, "real_level3"))
        assert mean_point_distance(fields[k]) == pytest.approx(total, rel=1e-6), emotion
        assert mean_point_distance(glob[k]) == pytest.approx(total, rel=1e-6), emotion
        assert not np.allclose(fields[k], glob[k]), emotion


def test_image_plane_amplitude_and_depth_switch(targets):
    t, smoothing = targets
    flat, _ = fit_fields(t, smoothing, LDMFitConfig(depth=False, amplitude_axes="xy", amplitude=0.85,
                                                    amplitude_per_region=False))
    assert np.all(flat[..., 2] == 0)
    for k, emotion in enumerate(NON_NEUTRAL):
        real = _real(t, emotion, "real_level3_xy")
        if real:
            assert mean_point_distance(flat[k][:, :2]) == pytest.approx(0.85 * np.mean(real), rel=1e-6)


def test_bad_amplitude_axes_is_named_when_configured():
    with pytest.raises(ValueError, match="amplitude_axes"):
        LDMFitConfig(amplitude_axes="z")


@pytest.mark.slow
def test_driving_judge_reading_pools_motion_draws(prepared_tracks):
    """Two motion draws pooled: twice the frames, and each emotion's accuracy the mean of the two draws' (equal
    frames per draw), so a candidate LDM is judged over several draws, not one."""
    from backend.evaluation.emotion_report import DEFAULT_JUDGE
    from backend.evaluation.judge_real_video import judge_on_real_video
    from backend.motion.ldm_eval import driving_judge_reading
    from backend.motion.model_io import SHIPPED_MODELS, load_model, load_motion_models
    judge = judge_on_real_video(prepared_tracks, DEFAULT_JUDGE).judge
    models = load_motion_models(None, "cpu")
    ldm = load_model(SHIPPED_MODELS, "ldm")
    kw = dict(intensities=(1.0,), judge=judge, motion_models=models)
    one = [driving_judge_reading(ldm, prepared_tracks, seeds=(s,), **kw)["intensity 1"]["bursts"] for s in (0, 1)]
    both = driving_judge_reading(ldm, prepared_tracks, seeds=(0, 1), **kw)
    assert both["seeds"] == [0, 1]
    pooled = both["intensity 1"]["bursts"]
    assert pooled["frames"] == one[0]["frames"] + one[1]["frames"]
    for emotion, acc in pooled["per_emotion"].items():
        assert acc == pytest.approx(0.5 * (one[0]["per_emotion"][emotion] + one[1]["per_emotion"][emotion]))
