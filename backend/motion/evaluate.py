"""``evaluate_motion``: every motion metric against its trivial baseline, on held-out tracks.

Held out: the data module's validation speakers for talking clips (speaker-disjoint
from training) and the tail (~20 %, the data module's ``val_start_frame``) of every
MEAD clip for the shipped LDM and classifier. Speaker-held-out LDM numbers are
:mod:`ldm_eval`'s (leave one MEAD speaker out, ``ldm_generalisation``). Sections:

* ``audio2motion``: M-LMD / F-LMD (canonical units and source pixels) of the VAE
  (deterministic mode, each clip's own mean face as identity) vs "mean face, mouth
  static"; mouth-opening correlation with the ground truth.
* ``sync``: SyncNet confidence and |offset| on generated tracks, on the real tracks
  and on the real tracks shifted by 5 frames.
* ``ldm``: landmark error on held-out emotional frames vs "no deformation"; the lip-sync
  cost of the deformation (SyncNet confidence and mouth-opening change on held-out
  talking clips passed through the LDM) with the shipped LDM (lip term on) and an
  ablation trained here without the lip term.
* ``emotion``: classifier accuracy per emotion on held-out real frames, on the neutral
  clips' held-out frames deformed by the LDM to each emotion, and on the undeformed input.
* ``idle``: velocity / acceleration of head pose and landmarks in silent spans:
  sampled pose with and without the idle method vs the real tracks' silent spans.
* ``lipsync``: :mod:`lipsync_eval` on held-out people: mouth-opening correlation, velocity
  ratio, lip closure, M-LMD / F-LMD vs static face, loudness envelope and the model shipped
  before (``EvalConfig.previous_models``); lips in pauses (silence, noisy meeting); seed spread.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from backend.motion import training
from backend.motion.audio2motion import gate_pauses
from backend.motion.emotion_classifier import classify_track
from backend.motion.landmarks import mouth_opening
from backend.motion.lipsync_data import held_out_from
from backend.motion.metrics import lmd_pair, mouth_opening_correlation, pixels_per_unit
from backend.motion.model_io import MotionModels, load_motion_models
from backend.motion.pose_sampling import PoseTrack, motion_statistics, sample_pose, silent_spans
from backend.motion.syncnet import sync_profile
from backend.motion.tracks_data import TrackClip, load_clips, split_clips
from bridge.emotions import EMOTIONS, NUM_EMOTIONS
from bridge.landmarks import NUM_LANDMARKS

SHIFT_FRAMES = 5


@dataclass
class EvalConfig:
    tracks: str = "cache/tracks"
    models: str | None = None          # None: the shipped models
    ablation_steps: int = 1500         # LDM without the lip term, trained here for the comparison
    seed: int = 0
    previous_models: str | None = "cache/previous_models"   # audio-to-motion shipped before (skipped if absent)


def _mean(values) -> float:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def vae_neutral(models: MotionModels, clip: TrackClip, temperature: float = 0.0, seed: int = 0) -> np.ndarray:
    """VAE landmarks for a clip's own audio, with its own mean face as identity and its VAD for silence."""
    vae = models.audio2motion
    with torch.no_grad():
        disp = vae.generate(torch.as_tensor(clip.mel[: 4 * clip.frames]), temperature=temperature, seed=seed)
        disp = gate_pauses(disp, vae.rest_displacement, clip.speech, clip.landmarks.mean(0))
    return (disp.cpu().numpy() + clip.landmarks.mean(0)).astype(np.float32)


def _image_landmarks(clip: TrackClip) -> np.ndarray | None:
    npz = clip.meta.get("_path")
    if npz:
        with np.load(npz) as z:
            return z["landmarks_image"] if "landmarks_image" in z else None
    return None


def evaluate_audio2motion(models: MotionModels, clips: list[TrackClip]) -> dict:
    rows, generated = [], {}
    for c in clips:
        gen = vae_neutral(models, c)
        generated[c.name] = gen
        static = np.repeat(c.landmarks.mean(0, keepdims=True), c.frames, 0)
        ppu = pixels_per_unit(_image_landmarks(c))
        model, base = lmd_pair(gen, c.landmarks), lmd_pair(static, c.landmarks)
        rows.append({"clip": c.name, "frames": c.frames, **{f"vae_{k}": v for k, v in model.items()},
                     **{f"baseline_{k}": v for k, v in base.items()},
                     "pixels_per_unit": ppu, "mouth_open_corr": mouth_opening_correlation(gen, c.landmarks)})
    summary = {k: _mean(r[k] for r in rows) for k in
               ("vae_m_lmd", "vae_f_lmd", "baseline_m_lmd", "baseline_f_lmd", "mouth_open_corr")}
    for k in ("vae_m_lmd", "vae_f_lmd", "baseline_m_lmd", "baseline_f_lmd"):
        summary[f"{k}_px"] = _mean(r[k] * r["pixels_per_unit"] for r in rows if r["pixels_per_unit"])
    return {"per_clip": rows, **summary}, generated


def _sync(models: MotionModels, mel, landmarks, speech) -> dict:
    r = sync_profile(models.syncnet, mel, landmarks, speech=speech)
    return {"offset": r.offset, "confidence": r.confidence, "similarity": r.similarity, "profile": r.profile}


def evaluate_sync(models: MotionModels, clips: list[TrackClip], generated: dict[str, np.ndarray]) -> dict:
    rows = []
    for c in clips:
        n = c.frames - SHIFT_FRAMES
        rows.append({"clip": c.name,
                     "real": _sync(models, c.mel, c.landmarks, c.speech),
                     "generated": _sync(models, c.mel, generated[c.name], c.speech),
                     # audio 5 frames late: the mouth shows frame t's sound 5 frames early
                     "shifted_5": _sync(models, c.mel[4 * SHIFT_FRAMES:], c.landmarks[:n], c.speech[SHIFT_FRAMES:])})
    out = {"per_clip": rows}
    for kind in ("real", "generated", "shifted_5"):
        out[kind] = {"confidence": _mean(r[kind]["confidence"] for r in rows),
                     "abs_offset": _mean(abs(r[kind]["offset"]) for r in rows),
                     "similarity": _mean(r[kind]["similarity"] for r in rows)}
    return out


def ldm_landmark_error(ldm, targets: list[TrackClip], neutral_pool: list[TrackClip]) -> dict:
    """Per-point error of ``neutral + LDM`` vs the real emotional frames, and of "no deformation"."""
    pairs = training.deformation_pairs(targets, neutral_pool=neutral_pool)
    w = torch.nn.functional.one_hot(torch.as_tensor(pairs.label), NUM_EMOTIONS).float()
    with torch.no_grad():
        pred = ldm(torch.as_tensor(pairs.neutral), w, torch.as_tensor(pairs.intensity)).numpy()
    err_model = np.linalg.norm(pairs.neutral + pred - pairs.emotional, axis=-1).mean(-1)
    err_none = np.linalg.norm(pairs.neutral - pairs.emotional, axis=-1).mean(-1)
    per_emotion = {EMOTIONS[k]: {"ldm": float(err_model[pairs.label == k].mean()),
                                 "no_deformation": float(err_none[pairs.label == k].mean())}
                   for k in sorted(set(pairs.label.tolist()))}
    return {"ldm": float(err_model.mean()), "no_deformation": float(err_none.mean()), "per_emotion": per_emotion}


def lip_sync_cost(models: MotionModels, talking: list[TrackClip], variants: dict) -> dict:
    """SyncNet confidence / offset and mouth-opening change of talking clips deformed to each emotion."""
    cost = {}
    undeformed = [sync_profile(models.syncnet, c.mel, c.landmarks, speech=c.speech) for c in talking]
    cost["undeformed"] = {"sync_confidence": _mean(r.confidence for r in undeformed),
                          "abs_offset": _mean(abs(r.offset) for r in undeformed), "mouth_opening_change": 0.0}
    for name, ldm in variants.items():
        conf, open_change, offsets = [], [], []
        for c in talking:
            for k in range(1, NUM_EMOTIONS):
                wk = torch.zeros(c.frames, NUM_EMOTIONS)
                wk[:, k] = 1
                with torch.no_grad():
                    emo = ldm.deform(torch.as_tensor(c.landmarks), wk, torch.ones(c.frames)).numpy()
                r = sync_profile(models.syncnet, c.mel, emo, speech=c.speech)
                conf.append(r.confidence)
                offsets.append(abs(r.offset))
                open_change.append(float(np.abs(mouth_opening(emo) - mouth_opening(c.landmarks)).mean()))
        cost[name] = {"sync_confidence": _mean(conf), "abs_offset": _mean(offsets),
                      "mouth_opening_change": _mean(open_change)}
    return cost


def emotion_scores(clf, ldm, targets: list[TrackClip]) -> dict:
    """Classifier accuracy per emotion on real clips, on the neutral clip(s) deformed by the LDM, on neutral input."""
    real, deformed, neutral_in = {}, {}, {}
    for c in targets:
        pred, _ = classify_track(clf, c.landmarks)
        real.setdefault(c.emotion, []).append(float(np.mean(pred == c.emotion_label)))
    for c in [c for c in targets if c.emotion == "neutral"]:
        for k, name in enumerate(EMOTIONS):
            wk = torch.zeros(c.frames, NUM_EMOTIONS)
            wk[:, k] = 1
            with torch.no_grad():
                emo = ldm.deform(torch.as_tensor(c.landmarks), wk, torch.ones(c.frames)).numpy()
            deformed.setdefault(name, []).append(float(np.mean(classify_track(clf, emo)[0] == k)))
            neutral_in.setdefault(name, []).append(float(np.mean(classify_track(clf, c.landmarks)[0] == k)))
    real, deformed, neutral_in = ({k: _mean(v) for k, v in d.items()} for d in (real, deformed, neutral_in))
    return {"real_clips": real, "ldm_output": deformed, "neutral_input": neutral_in,
            "mean": {"real_clips": _mean(real.values()), "ldm_output": _mean(deformed.values()),
                     "neutral_input": _mean(neutral_in.values()), "chance": 1 / NUM_EMOTIONS}}


def evaluate_idle(models: MotionModels, clips: list[TrackClip], seed: int = 0) -> dict:
    """Pose / landmark motion in silent spans (>= 12 frames) of talking clips with such spans."""
    acc = {k: [] for k in ("real", "idle_on", "idle_off")}
    lm = {"real": [], "generated": []}
    used = []
    for c in clips:
        if not silent_spans(c.speech, 12):
            continue
        mask = np.zeros(c.frames, bool)
        for a, b in silent_spans(c.speech, 12):
            mask[a:b] = True
        used.append(c.name)
        track = PoseTrack(c.rotation, c.translation)
        for key, rot in (("real", c.rotation),
                         ("idle_on", sample_pose(track, c.frames, c.speech, seed=seed, idle=True)[0]),
                         ("idle_off", sample_pose(track, c.frames, c.speech, seed=seed, idle=False)[0])):
            acc[key].append(motion_statistics(Rotation.from_matrix(rot).as_rotvec(), mask))
        lm["real"].append(motion_statistics(c.landmarks, mask))
        lm["generated"].append(motion_statistics(vae_neutral(models, c), mask))
    summarise = lambda vals: {"velocity": _mean(v for v, _ in vals), "acceleration": _mean(a for _, a in vals)}
    return {"clips": used, "units": "pose: rad/frame (rotation vector); landmarks: canonical units/frame (flattened "
                      f"{NUM_LANDMARKS}x3 norm)",
            "pose": {k: summarise(v) for k, v in acc.items()},
            "landmarks": {k: summarise(v) for k, v in lm.items()}}


def evaluate_motion(config: EvalConfig | None = None, device: torch.device | str = "cpu") -> dict:
    """All motion metrics as a JSON-able dict (see the module docstring)."""
    config = config or EvalConfig()
    torch.manual_seed(config.seed)
    models = load_motion_models(config.models, device, with_metrics=True)
    clips, trained_people = held_out_from(load_clips(config.tracks), models.folder)
    splits = split_clips(clips)
    variants = {"with_lip_term": models.ldm}
    if config.ablation_steps > 0 and splits.mead_train:
        cfg = training.LDMTrainConfig(steps=config.ablation_steps, lip_weight=0.0, seed=config.seed)
        variants["without_lip_term"], _ = training.train_ldm(
            cfg, splits.mead_train, torch.device("cpu"), identity_clips=splits.talking_train + splits.mead_train)
    a2m, generated = evaluate_audio2motion(models, splits.talking_test)
    neutral_pool = [c for c in splits.mead_full if c.emotion == "neutral"]
    return {
        "held_out": {"talking": [c.name for c in splits.talking_test],
                     "trained_on_not_held_out": trained_people,
                     "mead": f"last ~20 % of each of {len(splits.mead_test)} MEAD clips (data module's val_start_frame)"},
        "audio2motion": a2m,
        "sync": evaluate_sync(models, splits.talking_test, generated),
        "ldm": {"landmark_error": ldm_landmark_error(models.ldm, splits.mead_test, neutral_pool),
                "lip_sync_cost": lip_sync_cost(models, splits.talking_test, variants)},
        "emotion": emotion_scores(models.emotion, models.ldm, splits.mead_test),
        "idle": evaluate_idle(models, splits.talking_train + splits.talking_test, config.seed),
        "ldm_generalisation": _ldm_generalisation(models, clips, splits),
        "lipsync": _lipsync_section(models, clips, config),
    }


def _lipsync_section(models: MotionModels, clips: list[TrackClip], config: EvalConfig) -> dict:
    """Held-out people: the model vs static face, loudness envelope and the model shipped before."""
    from backend.motion.lipsync_eval import lipsync_report
    from backend.motion.model_io import load_model
    previous = None
    if config.previous_models and (Path(config.previous_models) / "audio2motion.json").is_file():
        previous = load_model(config.previous_models, "audio2motion")
    return lipsync_report(models, clips, previous)


def _ldm_generalisation(models: MotionModels, clips: list[TrackClip], splits) -> dict:
    """:mod:`ldm_eval`: the LDM recipe leave-one-MEAD-speaker-out, amplitude vs real MEAD, lip sync under emotion."""
    from backend.motion.ldm_eval import evaluate_ldm
    speech = max(splits.talking_test, key=lambda c: c.frames) if splits.talking_test else None
    return evaluate_ldm(models.ldm, clips, models, speech)
