"""Subject NeRF end to end on real data: prepare a few seconds of cnn2, train briefly, beat the
mean-frame baseline on held-out frames, and render plates through RenderStage (coverage,
camera looking away, cancellation, bad requests, wrong checkpoints)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from recording_context import RecordingContext

from backend.pipeline.base import CameraSpec, GenerateJob, JobCancelled, StageError

SECONDS = 5.0
RESOLUTION = 64


@pytest.fixture(scope="module")
def trained_subject(shared_data, tmp_path_factory):
    from backend.render.prepare import PrepareConfig, prepare_subject
    from backend.render.train import TrainConfig, train_subject

    root = tmp_path_factory.mktemp("subjects")
    subject = root / "cnn2_test"
    prepare_subject(shared_data / "talking" / "cnn2_25fps.mp4", subject,
                    config=PrepareConfig(resolution=RESOLUTION, max_seconds=SECONDS), progress=False)
    config = TrainConfig(steps=700, minutes=None, eval_every=10 ** 9, checkpoint_every=10 ** 9, eval_frames=6,
                         occupancy_warmup=150)
    summary = train_subject(subject, config, progress=False)
    return subject, summary


def _job(frames: int, **kw) -> GenerateJob:
    return GenerateJob(job_id="t", audio=np.zeros(16000, np.float32), fps=25.0, frame_count=frames,
                       emotion_weights=np.tile(np.eye(8, dtype=np.float32)[:1], (frames, 1)),
                       emotion_intensity=np.zeros(frames, np.float32), subject="cnn2_test", **kw)


def _heldout_state(subject, count: int = 3):
    from backend.render.subject_dataset import SubjectDataset
    data = SubjectDataset(subject)
    idx = data.heldout_indices[:count]
    t = data.track
    state = {"landmarks": t["landmarks"][idx], "rotation": t["rotation"][idx], "translation": t["translation"][idx]}
    return data, idx, state


def _stage(subject):
    from backend.render.stage import RenderStage
    from backend.subjects import SubjectStore
    return RenderStage("cpu", SubjectStore([subject.parent]))


def test_short_training_beats_the_mean_frame(trained_subject):
    _, summary = trained_subject
    assert summary["heldout_psnr"] > summary["mean_frame_psnr"] + 0.5, summary


def test_second_prepare_run_is_cached(trained_subject, shared_data):
    from backend.render.prepare import PrepareConfig, prepare_subject
    subject, _ = trained_subject
    stamp = (subject / "prepared" / "frames.npy").stat().st_mtime
    prepare_subject(shared_data / "talking" / "cnn2_25fps.mp4", subject,
                    config=PrepareConfig(resolution=RESOLUTION, max_seconds=SECONDS), progress=False)
    assert (subject / "prepared" / "frames.npy").stat().st_mtime == stamp


def test_plates_cover_the_person_and_leave_the_background_clear(trained_subject):
    subject, _ = trained_subject
    data, idx, state = _heldout_state(subject)
    ctx = RecordingContext(state)
    _stage(subject).run(_job(len(idx)), ctx)
    assert sorted(ctx.plates) == list(range(len(idx))) and not ctx.warnings
    for j, i in enumerate(idx):
        plate = ctx.plates[j]
        assert plate.shape == (data.frames.shape[1], data.frames.shape[2], 4) and plate.dtype == np.uint8
        alpha = plate[..., 3] / 255.0
        person = data.masks[i] > 200
        background = data.masks[i] < 20
        assert (alpha[person] > 0.5).mean() > 0.9, "person should be mostly opaque"
        assert (alpha[background] < 0.5).mean() > 0.9, "background should be mostly transparent"
    assert ctx.progress_values[-1] == pytest.approx(1.0)


def test_camera_looking_away_gives_transparent_plates_and_a_warning(trained_subject):
    subject, _ = trained_subject
    _, idx, state = _heldout_state(subject, 2)
    away = np.eye(4)
    away[:3, 3] = [0.0, -0.6, 0.0]     # in front of the face, 60 cm ...
    away[:3, :3] = np.array([[-1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])  # ... but looking away from it (-Z -> -Y)
    camera = CameraSpec(50.0, 36.0, 24.0, "AUTO", (48, 32), anchor_from_camera=away)
    ctx = RecordingContext(state)
    _stage(subject).run(_job(len(idx), camera=camera), ctx)
    assert len(ctx.plates) == 2 and all(p.shape == (32, 48, 4) and p[..., 3].max() == 0 for p in ctx.plates.values())
    assert any("does not see" in w for w in ctx.warnings)


def test_blender_camera_facing_the_subject_renders_it(trained_subject):
    """The subject's training camera, sent as a Blender CameraSpec, renders like the default camera."""
    subject, _ = trained_subject
    info = json.loads((subject / "subject.json").read_text())
    cam = dict(info["training_camera"])
    spec = CameraSpec(cam["focal_length_mm"], cam["sensor_width_mm"], cam["sensor_height_mm"], cam["sensor_fit"],
                      tuple(cam["resolution"]), cam["shift_x"], cam["shift_y"],
                      np.array(cam["anchor_from_camera"]).reshape(4, 4))
    _, idx, state = _heldout_state(subject, 1)
    by_default, by_spec = RecordingContext(state), RecordingContext(state)
    stage = _stage(subject)
    stage.run(_job(1), by_default)
    stage.run(_job(1, camera=spec), by_spec)
    diff = np.abs(by_default.plates[0].astype(int) - by_spec.plates[0].astype(int))
    assert diff.max() <= 2


def test_blender_camera_above_the_limit_renders_fitted_plates_with_a_warning(trained_subject):
    """No explicit size: a 1920x1080-like scene is scaled down to the subject's limit (aspect kept), not refused."""
    subject, _ = trained_subject
    info = json.loads((subject / "subject.json").read_text())
    cam = dict(info["training_camera"])
    limit = max(info["max_resolution"])
    spec = CameraSpec(cam["focal_length_mm"], cam["sensor_width_mm"], cam["sensor_height_mm"], cam["sensor_fit"],
                      (limit * 3, limit * 2), cam["shift_x"], cam["shift_y"],
                      np.array(cam["anchor_from_camera"]).reshape(4, 4))
    _, idx, state = _heldout_state(subject, 1)
    ctx = RecordingContext(state)
    _stage(subject).run(_job(1, camera=spec), ctx)
    assert ctx.plates[0].shape == (round(limit * 2 / 3), limit, 4)
    assert any("above" in w and "limit" in w for w in ctx.warnings)


def test_cancel_between_frames_keeps_frames_already_sent(trained_subject):
    subject, _ = trained_subject
    _, idx, state = _heldout_state(subject, 3)
    ctx = RecordingContext(state, cancel_after=2)
    with pytest.raises(JobCancelled):
        _stage(subject).run(_job(3), ctx)
    assert sorted(ctx.plates) == [0, 1] and all(p[..., 3].max() > 0 for p in ctx.plates.values())


def test_resolution_above_the_limit_is_a_bad_request(trained_subject):
    subject, _ = trained_subject
    _, idx, state = _heldout_state(subject, 1)
    with pytest.raises(StageError) as err:
        _stage(subject).run(_job(1, resolution=(4096, 4096)), RecordingContext(state))
    assert err.value.code == "bad_request" and "limit" in str(err.value)


def test_far_out_landmarks_are_clamped_with_a_warning(trained_subject):
    subject, _ = trained_subject
    _, idx, state = _heldout_state(subject, 1)
    state["landmarks"] = state["landmarks"] * 3.0
    ctx = RecordingContext(state)
    _stage(subject).run(_job(1), ctx)
    assert any("outside" in w for w in ctx.warnings) and len(ctx.plates) == 1


def test_checkpoint_of_another_subject_is_refused(trained_subject, tmp_path):
    subject, _ = trained_subject
    other = tmp_path / "other"
    shutil.copytree(subject, other, ignore=shutil.ignore_patterns("prepared"))
    info = json.loads((other / "subject.json").read_text())
    info["name"] = "other"
    (other / "subject.json").write_text(json.dumps(info))
    from backend.render.stage import RenderStage
    from backend.subjects import SubjectStore
    stage = RenderStage("cpu", SubjectStore([tmp_path]))
    with pytest.raises(StageError, match="trained for subject 'cnn2_test'"):
        stage.renderer("other")
    meta = json.loads((subject / "nerf.json").read_text())
    meta["version"] = 999
    (other / "nerf.json").write_text(json.dumps(meta))
    info["name"] = "cnn2_test"
    (other / "subject.json").write_text(json.dumps(info))
    with pytest.raises(StageError, match="version 999"):
        RenderStage("cpu", SubjectStore([tmp_path])).renderer("other")


class _GroundTruthMotion:
    """Isolates the renderer from the motion models: replays the subject's held-out track."""
    name = "motion"
    weight = 1.0

    def __init__(self, subject):
        from backend.render.subject_dataset import SubjectDataset
        data = SubjectDataset(subject)
        self.idx = data.heldout_indices
        self.track = data.track

    def run(self, job, ctx):
        idx = self.idx[np.arange(job.frame_count) % len(self.idx)]
        t = self.track
        ctx.state.update(landmarks=t["landmarks"][idx], rotation=t["rotation"][idx], translation=t["translation"][idx])
        ctx.emit_landmarks(0, t["landmarks"][idx], t["rotation"][idx], t["translation"][idx])


def test_generate_over_the_bridge_returns_rgba_plates_covering_the_person(trained_subject, tmp_path):
    """Real server (ZeroMQ ROUTER), real client, our RenderStage; alpha checked against the person mask."""
    from backend.pipeline.local import decode_png
    from backend.composition import StageSet
    from backend.server.server import BackendServer, ServerConfig
    from backend.subjects import SubjectStore
    from bridge.client import SyncClient
    from bridge.requests import build_generate

    subject, _ = trained_subject

    class Stages(StageSet):
        def _motion_stage(self):
            return _GroundTruthMotion(subject)

    subjects = SubjectStore([subject.parent])
    server = BackendServer(ServerConfig(bind="tcp://127.0.0.1:*", jobs_dir=tmp_path / "jobs"),
                           Stages("cpu", subjects), subjects)
    server.start()
    try:
        frames = 3
        audio = np.zeros(int(16000 * frames / 25), np.float32)
        weights = np.tile(np.eye(8, dtype=np.float32)[:1], (frames, 1))
        request = build_generate(audio, 16000, 25.0, weights, np.zeros(frames, np.float32), subject="cnn2_test",
                                 landmarks_only=False)
        plates = {}
        with SyncClient(server.address, timeout_s=60) as client:
            job = client.submit(request)
            for msg in client.iter_job(job):
                if msg.type == "plate":
                    plates[msg.content["frame"]] = decode_png(bytes(msg.buffers[0].data))
                last = msg
        assert last.type == "done" and len(plates) == frames
    finally:
        server.stop()
    from backend.render.subject_dataset import SubjectDataset
    data = SubjectDataset(subject)
    for j, frame in enumerate(sorted(plates)):
        alpha = plates[frame][..., 3] / 255.0
        mask = data.masks[data.heldout_indices[j]]
        assert (alpha[mask > 200] > 0.5).mean() > 0.9
        assert (alpha[mask < 20] < 0.5).mean() > 0.9


def test_training_resumes_from_its_checkpoint(trained_subject):
    from backend.render.train import TrainConfig, train_subject
    subject, summary = trained_subject
    more = train_subject(subject, TrainConfig(steps=summary["steps"] + 15, minutes=None, eval_every=10 ** 9,
                                              checkpoint_every=10 ** 9, eval_frames=2, occupancy_warmup=150),
                         resume=True, progress=False)
    assert more["steps"] == summary["steps"] + 15
    assert more["heldout_psnr"] > summary["mean_frame_psnr"]
    assert (subject / "training_curves.png").stat().st_size > 0


def test_a_subject_rescaled_to_twice_its_size_fine_tunes_from_its_weights(trained_subject, tmp_path):
    from backend.render.prepare import rescale_prepared
    from backend.render.subject_dataset import SubjectDataset
    from backend.render.train import TrainConfig, train_subject
    subject, _ = trained_subject
    fine = rescale_prepared(subject, tmp_path / "cnn2_test", 2 * RESOLUTION, progress=False)
    coarse, data = SubjectDataset(subject), SubjectDataset(fine)
    assert data.frames.shape[1:3] == (2 * RESOLUTION, 2 * RESOLUTION) and len(data.frames) == len(coarse.frames)
    assert np.allclose(data.info["intrinsics"], 2 * np.asarray(coarse.info["intrinsics"]))
    assert (data.track["landmarks"] == coarse.track["landmarks"]).all()     # the same track: the code stays valid
    out = train_subject(fine, TrainConfig(steps=10, minutes=None, eval_every=10 ** 9, checkpoint_every=10 ** 9,
                                          eval_frames=2, occupancy_warmup=10 ** 9),
                        init_from=subject / "nerf", progress=False)
    # ten steps from scratch are nowhere near the mean frame; from the coarse weights they are far above it
    assert out["heldout_psnr"] > out["mean_frame_psnr"] + 0.5, out
