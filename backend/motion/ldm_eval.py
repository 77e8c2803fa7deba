"""Does the LDM generalise across people, with the amplitude of real emotion, and keep lip sync?

* ``leave_one_speaker_out``: for every MEAD speaker s, fit the LDM recipe
  (:mod:`backend.motion.ldm_training`) on all other MEAD speakers and score it on s
  against "no deformation" (= s's own neutral reference):
  - **clip-mean shape error** (the gate): per emotional clip, mean over points of
    |clip mean - (reference + intensity x field)| vs |clip mean - reference|;
  - per-frame paired error (speakers filmed neutral): each emotional frame vs the
    neutral frame of closest inner-lip gaps, +field vs +nothing (dominated by the
    different sentences MEAD takes speak);
  - reference-free, for speakers filmed in >= 2 emotions: the difference between
    two of their emotion clips' means vs the LDM's difference of fields (0 for none).
  A speaker without a neutral clip has an estimated reference made from the same
  clips, which absorbs part of their expression: their "no deformation" baseline
  is optimistic, and the table says which reference each speaker has.
* ``amplitude``: the LDM's mean displacement per emotion at intensity 1 vs real MEAD
  level-3 displacement (clip mean minus own neutral reference, speakers filmed
  neutral, mean over speakers); gate ±30 %; bar plot.
* ``lip_sync``: the shipped VAE on a held-out speech clip, each emotion at intensity
  1: SyncNet best offset and mouth-opening correlation with the neutral take.
* ``region_agreement``: cosine of each field with each filmed-neutral speaker's real
  displacement, whole face and per region (fidelity on the generator pool, transfer
  on the others).
* ``driving_judge_reading``: the plate-level emotion judge on the driving landmarks of
  held-out speech (what ``emogene eval emotion`` renders, without rendering: seconds).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bridge.emotions import EMOTIONS
from backend.data.neutral_reference import OWN_NEUTRAL
from backend.motion.ldm_training import (NON_NEUTRAL, REGION_GROUPS, LDMFitConfig, fit_ldm, identity_basis_from_clips,
                                         mead_clips, mean_point_distance, motion_directions, speaker_targets)
from backend.motion.tracks_data import TrackClip

#: the LDM shipped before this recipe, leave-one-speaker-out, per-frame paired error (MODEL_CARD, version 1)
PREVIOUS_LDM = {"M030": {"ldm": 0.0722, "no_deformation": 0.0495},
                "W009": {"ldm": 0.0504, "no_deformation": 0.0416}}
AMPLITUDE_TOLERANCE = 0.30
SYNC_OFFSET_TOLERANCE = 1
MOUTH_CORRELATION_MIN = 0.9


@dataclass
class LDMEvalConfig:
    fit: LDMFitConfig = field(default_factory=lambda: LDMFitConfig(generator_pool_only=False))


def _one_hot(labels, n: int = 8) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.as_tensor(np.asarray(labels)), n).float()


def _field_of(model, emotion: str) -> np.ndarray:
    """Emotion's field at intensity 1 ``[NUM_LANDMARKS, 3]`` of an LDM, or of ``metrics["fields"]`` (nested lists)."""
    fields = model.fields.double().numpy() if hasattr(model, "fields") else np.asarray(model, np.float64)
    return fields[EMOTIONS.index(emotion) - 1]


def held_out_errors(model, clips: list[TrackClip], reference: np.ndarray, reference_kind: str) -> dict:
    """Errors of ``model`` on one held-out speaker's clips (see the module doc)."""
    from backend.motion.training import deformation_pairs
    emotional = [c for c in clips if c.emotion not in (None, "neutral")]
    per_emotion: dict[str, dict[str, list[float]]] = {}
    for c in emotional:
        target = c.landmarks.mean(0).astype(np.float64) - reference
        pred = c.intensity * _field_of(model, c.emotion)
        e = per_emotion.setdefault(c.emotion, {"ldm": [], "no_deformation": [], "cosine": []})
        e["ldm"].append(mean_point_distance(target - pred))
        e["no_deformation"].append(mean_point_distance(target))
        e["cosine"].append(float(target.ravel() @ pred.ravel()
                                 / max(np.linalg.norm(target) * np.linalg.norm(pred), 1e-12)))
    rows = {k: {m: float(np.mean(v)) for m, v in d.items()} for k, d in per_emotion.items()}
    clip_ldm = [x for d in per_emotion.values() for x in d["ldm"]]
    clip_none = [x for d in per_emotion.values() for x in d["no_deformation"]]
    out = {"reference": reference_kind, "clips": len(emotional),
           "clip_mean": {"ldm": float(np.mean(clip_ldm)), "no_deformation": float(np.mean(clip_none))},
           # direction only: cosine of the LDM's displacement with the real one (0: unrelated, 1: same)
           "cosine": float(np.mean([x for d in per_emotion.values() for x in d["cosine"]])),
           "per_emotion": rows}
    if reference_kind == OWN_NEUTRAL:
        # like-for-like with the previous LDM's numbers: the 256^2 crops (no 1080p clip), frames paired by lip gaps
        same_kind = [c for c in clips if "1080p" not in c.name]
        pairs = deformation_pairs(same_kind)
        with torch.no_grad():
            d = model(torch.as_tensor(pairs.neutral), _one_hot(pairs.label), torch.as_tensor(pairs.intensity)).numpy()
        out["paired_frames"] = {"ldm": float(np.linalg.norm(pairs.neutral + d - pairs.emotional, axis=-1).mean()),
                                "no_deformation": float(np.linalg.norm(pairs.neutral - pairs.emotional, axis=-1).mean()),
                                "frames": int(len(pairs.label))}
    diffs = emotion_differences(model, emotional)
    if diffs:
        out["emotion_differences"] = diffs
    return out


def emotion_differences(model, emotional: list[TrackClip]) -> dict | None:
    """Reference-free: clip-mean differences between two emotions of one speaker vs the LDM's."""
    ldm, none = [], []
    for i, a in enumerate(emotional):
        for b in emotional[i + 1:]:
            if a.emotion == b.emotion:
                continue
            real = a.landmarks.mean(0).astype(np.float64) - b.landmarks.mean(0)
            pred = a.intensity * _field_of(model, a.emotion) - b.intensity * _field_of(model, b.emotion)
            ldm.append(mean_point_distance(real - pred))
            none.append(mean_point_distance(real))
    if not ldm:
        return None
    return {"ldm": float(np.mean(ldm)), "no_deformation": float(np.mean(none)), "pairs": len(ldm)}


def leave_one_speaker_out(clips: list[TrackClip], config: LDMEvalConfig | None = None) -> dict:
    """Per held-out MEAD speaker: the recipe fitted on every other MEAD speaker, scored on this one."""
    config = config or LDMEvalConfig()
    cfg = dataclasses.replace(config.fit, generator_pool_only=False)
    basis = identity_basis_from_clips(clips, cfg)
    smoothing = motion_directions(clips, cfg.smooth_components)
    targets = speaker_targets(clips, basis, cfg)        # references do not depend on the fold
    labelled = mead_clips(clips)
    out = {}
    for speaker in sorted(targets):
        train = [c for c in clips if c not in labelled or c.speaker != speaker]
        model, info = fit_ldm(train, cfg, basis=basis, smoothing=smoothing)
        test = [c for c in labelled if c.speaker == speaker]
        row = held_out_errors(model, test, targets[speaker].reference, targets[speaker].reference_kind)
        row["trained_on"] = sorted(info["speakers"])
        out[speaker] = row
    return out


def real_amplitude(clips: list[TrackClip], cfg: LDMFitConfig | None = None) -> dict[str, dict]:
    """Per emotion: real level-3 displacement (clip mean - own neutral, mean over points), per speaker filmed neutral."""
    cfg = cfg or LDMFitConfig(generator_pool_only=False)
    targets = speaker_targets(clips, identity_basis_from_clips(clips, cfg), cfg)
    out = {}
    for emotion in NON_NEUTRAL:
        per = {s: t.real_level3[emotion] for s, t in targets.items()
               if t.reference_kind == OWN_NEUTRAL and emotion in t.real_level3}
        out[emotion] = {"speakers": per, "mean": float(np.mean(list(per.values()))) if per else None}
    return out


def amplitude_table(model, clips: list[TrackClip]) -> dict:
    real = real_amplitude(clips)
    rows = {}
    for emotion in NON_NEUTRAL:
        ldm = mean_point_distance(_field_of(model, emotion))
        r = real[emotion]["mean"]
        rows[emotion] = {"ldm": ldm, "real": r, "real_per_speaker": real[emotion]["speakers"],
                         "ratio": (ldm / r) if r else None}
    ratios = [v["ratio"] for v in rows.values() if v["ratio"] is not None]
    return {"per_emotion": rows, "tolerance": AMPLITUDE_TOLERANCE,
            "within_tolerance": bool(ratios) and all(abs(x - 1) <= AMPLITUDE_TOLERANCE for x in ratios)}


def lip_sync_under_emotion(models, clip: TrackClip) -> dict:
    """The shipped VAE on ``clip``'s audio, neutral vs each emotion at intensity 1 through the LDM."""
    from backend.motion.evaluate import vae_neutral
    from backend.motion.generator import apply_emotion
    from backend.motion.landmarks import mouth_opening
    from backend.motion.syncnet import sync_profile
    neutral = vae_neutral(models, clip)
    base = sync_profile(models.syncnet, clip.mel, neutral, speech=clip.speech)
    rows = {"neutral": {"offset": int(base.offset), "confidence": float(base.confidence), "mouth_correlation": 1.0}}
    for k, emotion in enumerate(EMOTIONS):
        if emotion == "neutral":
            continue
        w = np.zeros((clip.frames, len(EMOTIONS)), np.float32)
        w[:, k] = 1
        emo = apply_emotion(models, neutral, w, np.ones(clip.frames, np.float32))
        r = sync_profile(models.syncnet, clip.mel, emo, speech=clip.speech)
        corr = float(np.corrcoef(mouth_opening(emo), mouth_opening(neutral))[0, 1])
        rows[emotion] = {"offset": int(r.offset), "confidence": float(r.confidence), "mouth_correlation": corr}
    ok = all(abs(v["offset"] - base.offset) <= SYNC_OFFSET_TOLERANCE and abs(v["offset"]) <= SYNC_OFFSET_TOLERANCE
             and v["mouth_correlation"] >= MOUTH_CORRELATION_MIN for v in rows.values())
    return {"clip": clip.name, "per_emotion": rows, "passes": ok}




def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def real_displacements(clips: list[TrackClip]) -> dict[str, dict[str, np.ndarray]]:
    """Per MEAD speaker filmed neutral, per emotion: mean over their clips of (clip mean - own neutral mean),
    nothing aligned or removed ``[NUM_LANDMARKS, 3]``."""
    out: dict[str, dict[str, np.ndarray]] = {}
    labelled = mead_clips(clips)
    for speaker in sorted({c.speaker for c in labelled}):
        own = [c for c in labelled if c.speaker == speaker]
        neutral = [c.landmarks for c in own if c.emotion == "neutral"]
        if not neutral:
            continue
        ref = np.concatenate(neutral).astype(np.float64).mean(0)
        out[speaker] = {e: np.mean([c.landmarks.mean(0) - ref for c in own if c.emotion == e], axis=0)
                        for e in NON_NEUTRAL if any(c.emotion == e for c in own)}
    return out


def region_agreement(model, clips: list[TrackClip]) -> dict:
    """Cosine of the LDM's field with each speaker's real displacement, per emotion, whole face and per region
    (:data:`REGION_GROUPS`). Speakers the LDM learnt from measure fidelity; the others, transfer."""
    from bridge.landmarks import REGIONS
    groups = {g: np.concatenate([np.asarray(REGIONS[r]) for r in names]) for g, names in REGION_GROUPS.items()}
    out = {}
    for speaker, per in real_displacements(clips).items():
        rows = {e: {"face": _cosine(_field_of(model, e), d),
                    **{g: _cosine(_field_of(model, e)[idx], d[idx]) for g, idx in groups.items()}}
                for e, d in per.items()}
        out[speaker] = {"per_emotion": rows,
                        "mean": {k: float(np.mean([r[k] for r in rows.values()])) for k in ("face", *groups)}}
    return out


def _plate_config(audio: str | Path | None, frames: int | None, seed: int | None):
    """``PlateEvalConfig`` with the given speech / plates per take / one motion draw (defaults: eval emotion's)."""
    from backend.evaluation.plate_emotion import PlateEvalConfig
    cfg = PlateEvalConfig()
    changes = {k: v for k, v in (("audio", Path(audio) if audio else None), ("frames", frames)) if v is not None}
    cfg = dataclasses.replace(cfg, **changes) if changes else cfg
    return cfg if seed is None or seed == cfg.seed else cfg.draw(seed)


def driving_judge_reading(fields, tracks_dir: str | Path, subject_track: str | Path | None = None,
                          intensities: tuple[float, ...] = (1.0, 0.5), judge=None, motion_models=None,
                          audio: str | Path | None = None, seeds: tuple[int, ...] | None = None,
                          frames_per_take: int | None = None) -> dict:
    """The plate-level judge (``emogene eval emotion``) on the *driving landmarks* alone, no rendering.

    As :mod:`backend.evaluation.plate_emotion` builds them: held-out speech (``audio``, default eval emotion's)
    through the speech-motion model (the subject's face, each motion draw of ``seeds``, default eval emotion's
    draws), plus ``fields`` (an LDM or ``[7, NUM_LANDMARKS, 3]``) for each emotion at each intensity, plus
    blinks; judged relative to the intensity-0 take's mean, the judge's window kept inside each burst.
    ``bursts``: the frames ``eval emotion`` renders (``frames_per_take`` of them per draw, default eval
    emotion's); ``all``: every frame (2-s chunks), steadier. Draws are pooled (frames concatenated: one draw
    is noise). ``judge``: default, trained as ``eval emotion`` does (judge pool only).
    """
    from backend.evaluation.emotion_judge import displacement_features
    from backend.evaluation.judge_real_video import accuracy_summary
    from backend.evaluation.plate_emotion import FPS, load_speech
    from backend.motion.blinks import apply_blinks, blink_schedule, frame_closure
    from backend.motion.generator import SubjectMotion, neutral_motion, resample_linear
    from backend.motion.model_io import load_motion_models

    fields = np.asarray(fields.fields.double().numpy() if hasattr(fields, "fields") else fields, np.float64)
    bar = None
    if judge is None:
        from backend.evaluation.emotion_report import DEFAULT_JUDGE
        from backend.evaluation.judge_real_video import judge_on_real_video
        real = judge_on_real_video(tracks_dir, DEFAULT_JUDGE)
        judge, bar = real.judge, real.metrics["unseen_speakers"].get("mean_over_emotions")
    base = _plate_config(audio, frames_per_take, None)
    seeds = tuple(seeds) if seeds else base.seeds
    speech = load_speech(base)
    frames = int(np.ceil(len(speech) / 16000 * FPS))
    models = motion_models or load_motion_models(None, "cpu")
    face = SubjectMotion.from_track(subject_track).face if subject_track else None
    burst_frames = base.burst_frames(frames)
    views = {"bursts": (burst_frames, np.concatenate([[0], np.cumsum(np.diff(burst_frames) != 1)])),
             "all": (np.arange(frames), np.arange(frames) // 50)}
    pooled: dict = {}                       # (intensity, view) -> labels, predictions, clip index
    for d, seed in enumerate(seeds):
        cfg = _plate_config(audio, frames_per_take, seed)
        with torch.inference_mode():
            motion = neutral_motion(models, speech, face, 1.0, cfg.seed, "silero")
        neutral = resample_linear(motion.neutral, frames, FPS)
        closure = frame_closure(frames, FPS, blink_schedule(len(speech) / 16000, seed=cfg.seed))
        reference_take = apply_blinks(neutral, closure)
        for intensity in intensities:
            for view, (sel, bursts) in views.items():
                ref = reference_take[sel].mean(0)
                acc = pooled.setdefault((intensity, view), ([], [], []))
                for k in range(len(EMOTIONS)):
                    moved = neutral + (intensity * fields[k - 1] if k else 0.0)
                    lms = apply_blinks(moved.astype(np.float32), closure)[sel]
                    pred = np.empty(len(sel), np.int64)
                    for b in np.unique(bursts):
                        part = np.flatnonzero(bursts == b)
                        pred[part] = judge.predict(displacement_features(lms[part], ref, judge.config))
                    acc[0].append(np.full(len(sel), k))
                    acc[1].append(pred)
                    acc[2].append(np.full(len(sel), k + len(EMOTIONS) * d))
    out: dict = {"judge_on_real_unseen_speakers": bar, "audio": str(base.audio), "frames": frames,
                 "seeds": list(seeds)}
    for intensity in intensities:
        out[f"intensity {intensity:g}"] = {
            view: accuracy_summary(*(np.concatenate(x) for x in pooled[(intensity, view)])) for view in views}
    return out


def evaluate_ldm(model, clips: list[TrackClip], models=None, speech_clip: TrackClip | None = None,
                 config: LDMEvalConfig | None = None) -> dict:
    """The LDM section: leave-one-speaker-out of the recipe, amplitude of ``model``, lip sync (if models given)."""
    loso = leave_one_speaker_out(clips, config)
    beats = {s: {"clip_mean": r["clip_mean"]["ldm"] < r["clip_mean"]["no_deformation"],
                 **({"paired_frames": r["paired_frames"]["ldm"] < r["paired_frames"]["no_deformation"]}
                    if "paired_frames" in r else {})} for s, r in loso.items()}
    out = {"leave_one_speaker_out": loso, "beats_no_deformation": beats,
           "previous_ldm_leave_one_out_paired": PREVIOUS_LDM, "amplitude": amplitude_table(model, clips),
           "region_agreement": region_agreement(model, clips),
           "fields": np.round(model.fields.double().numpy(), 5).tolist()}
    if models is not None and speech_clip is not None and getattr(models, "syncnet", None) is not None:
        out["lip_sync"] = lip_sync_under_emotion(models, speech_clip)
    return out


def _f(x, nd: int = 4) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def markdown(metrics: dict) -> str:
    """The LDM generalisation section of the motion report."""
    loso = metrics["leave_one_speaker_out"]
    header = ["| held-out | reference | clips | clip-mean LDM | no deformation | ratio | direction cosine | paired frames LDM "
              "| no deformation | 2-emotion differences LDM | none |", "|---|---|---|---|---|---|---|---|---|---|---|"]

    def row(s: str, r: dict) -> str:
        p, d, cm = r.get("paired_frames", {}), r.get("emotion_differences", {}), r["clip_mean"]
        return (f"| {s} | {r['reference']} | {r['clips']} | {_f(cm['ldm'])} | {_f(cm['no_deformation'])} | "
                f"{_f(cm['ldm'] / max(cm['no_deformation'], 1e-12), 3)} | {_f(r['cosine'], 2)} | {_f(p.get('ldm'))} | "
                f"{_f(p.get('no_deformation'))} | {_f(d.get('ldm'))} | {_f(d.get('no_deformation'))} |")

    own = {s: r for s, r in loso.items() if r["reference"] == OWN_NEUTRAL}
    other = {s: r for s, r in loso.items() if r["reference"] != OWN_NEUTRAL}
    lines = ["## LDM across people (leave one MEAD speaker out, recipe refitted per fold)", "",
             "Gate: clip-mean shape error below \"no deformation\" (= the held-out speaker's own neutral clip), "
             "the LDM at the shipped amplitude. Speakers filmed neutral:", "", *header,
             *(row(s, r) for s, r in own.items())]
    if other:
        lines += ["", "Speakers never filmed neutral, not gated: their reference (*identity_projection*, "
                  "backend/data/neutral_reference.py) is estimated from the same emotional frames it is scored "
                  "on, so \"no deformation\" absorbs part of their expression (a one-clip speaker is in that "
                  "emotion in every frame; no reference made from those frames alone can be free of it). "
                  "Direction cosine and, with >= 2 emotions, the reference-free 2-emotion differences are the "
                  "measures here (decided before the numbers were looked at).", "", *header,
                  *(row(s, r) for s, r in other.items())]
    prev = metrics.get("previous_ldm_leave_one_out_paired", {})
    if prev:
        lines += ["", "LDM shipped before (version 1), same folds, paired frames: " + "; ".join(
            f"{s} {_f(v['ldm'])} vs {_f(v['no_deformation'])}" for s, v in prev.items()) + "."]
    amp = metrics["amplitude"]
    lines += ["", f"## LDM amplitude at intensity 1 vs real MEAD level 3 (gate ±{int(amp['tolerance'] * 100)} %)", "",
              "| emotion | LDM | real (mean over speakers filmed neutral) | ratio |", "|---|---|---|---|"]
    for e, v in amp["per_emotion"].items():
        lines.append(f"| {e} | {_f(v['ldm'])} | {_f(v['real'])} | {_f(v['ratio'], 2)} |")
    lines.append(f"\nAll within tolerance: {amp['within_tolerance']}.")
    agree = metrics.get("region_agreement")
    if agree:
        groups = list(REGION_GROUPS)
        lines += ["", "## LDM field vs each real speaker's displacement (cosine; filmed-neutral speakers)", "",
                  "Clip mean minus own neutral, nothing removed. A speaker the shipped LDM learnt from "
                  "(generator pool) measures fidelity; another measures transfer to a new face.", "",
                  "| speaker | " + " | ".join(f"{e}" for e in NON_NEUTRAL) + " | mean: face | "
                  + " | ".join(groups) + " |", "|---" * (len(NON_NEUTRAL) + len(groups) + 2) + "|"]
        for speaker, r in agree.items():
            per = r["per_emotion"]
            cells = [_f(per[e]["face"], 2) if e in per else "—" for e in NON_NEUTRAL]
            lines.append(f"| {speaker} | " + " | ".join(cells)
                         + f" | {_f(r['mean']['face'], 2)} | " + " | ".join(_f(r["mean"][g], 2) for g in groups) + " |")
    drive = metrics.get("driving_judge")
    if drive:
        lines += ["", "## The plate-level judge on the driving landmarks (no rendering)", "",
                  "| intensity | frames | mean over 8 emotions | " + " | ".join(EMOTIONS) + " |",
                  "|---" * (len(EMOTIONS) + 3) + "|"]
        for key, row in drive.items():
            if not key.startswith("intensity"):
                continue
            for view, acc in row.items():
                lines.append(f"| {key.split()[1]} | {view} | {_f(acc['mean_over_emotions'], 3)} | "
                             + " | ".join(_f(acc["per_emotion"].get(e), 2) for e in EMOTIONS) + " |")
        if drive.get("judge_on_real_unseen_speakers") is not None:
            lines.append(f"\nThe judge on real video of unseen speakers (the bar): "
                         f"{drive['judge_on_real_unseen_speakers']:.3f}.")
    ls = metrics.get("lip_sync")
    if ls:
        lines += ["", f"## Lip sync under emotion ({ls['clip']}, shipped VAE, intensity 1)", "",
                  "| emotion | SyncNet best offset | confidence | mouth-opening corr. with neutral |", "|---|---|---|---|"]
        for e, v in ls["per_emotion"].items():
            lines.append(f"| {e} | {v['offset']} | {_f(v['confidence'], 3)} | {_f(v['mouth_correlation'], 3)} |")
        lines.append(f"\nOffset within ±{SYNC_OFFSET_TOLERANCE} frame and correlation ≥ {MOUTH_CORRELATION_MIN}: "
                     f"{ls['passes']}.")
    return "\n".join(lines) + "\n"


def plot_amplitude(metrics: dict, path: str | Path) -> Path:
    """Bar plot per emotion: real level-3 displacement vs the LDM's at intensity 1."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = metrics["amplitude"]["per_emotion"]
    names = list(rows)
    x = np.arange(len(names))
    real = [rows[n]["real"] or 0 for n in names]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.bar(x - 0.2, real, 0.4, label="real MEAD level 3 (own neutral reference)", color="#777777")
    ax.bar(x + 0.2, [rows[n]["ldm"] for n in names], 0.4, label="LDM, intensity 1", color="#d95f02")
    ax.errorbar(x - 0.2, real, yerr=[[r * AMPLITUDE_TOLERANCE for r in real]] * 2, fmt="none", ecolor="k",
                capsize=3, lw=0.8, label="±30 %")
    ax.set_xticks(x, names)
    ax.set_ylabel("mean displacement (inter-ocular units)")
    ax.set_title("Emotion displacement amplitude per emotion")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_leave_one_out(metrics: dict, path: str | Path) -> Path:
    """Bars per held-out speaker: clip-mean error of the LDM vs no deformation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    path = Path(path)
    loso = metrics["leave_one_speaker_out"]
    names = list(loso)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    gated = [loso[s]["reference"] == OWN_NEUTRAL for s in names]
    hatch = [None if g else "//" for g in gated]
    ax.bar(x - 0.2, [loso[s]["clip_mean"]["no_deformation"] for s in names], 0.4, label="no deformation",
           color="#777777", hatch=hatch)
    ax.bar(x + 0.2, [loso[s]["clip_mean"]["ldm"] for s in names], 0.4, label="LDM (speaker held out)",
           color="#1b9e77", hatch=hatch)
    ax.legend(handles=[Patch(color="#777777", label="no deformation"),
                       Patch(color="#1b9e77", label="LDM (speaker held out)")], fontsize=8)
    ax.set_xticks(x, [f"{s}\n{'own (gate)' if g else 'proj.'}" for s, g in zip(names, gated)])
    ax.set_ylabel("clip-mean shape error")
    ax.set_title("Leave one MEAD speaker out (hatched: no neutral clip, reference from the same frames, not gated)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def model_card_lines(ldm_meta: dict) -> tuple[list[str], list[str]]:
    """``(data bullets, limits bullets)`` about the LDM for the motion MODEL_CARD, from ``ldm.json``."""
    names = list(ldm_meta.get("train_clips", []))
    speakers = sorted({n.split("_")[0] for n in names})
    data = [
        f"- LDM (emotion fields): MEAD generator pool only (backend/data/mead_pools.py; the plate-level emotion "
        f"judge's speakers W009, W023, W901, W902 are never seen), speakers {', '.join(speakers)}, {len(names)} "
        f"clips (first ~80 % of each): {', '.join(names)}. Licences: MEAD research-use terms for all; 256² crops "
        "via ali-vilab/dreamtalk (MIT) and jixinya/EAMM (MIT, the `901_crop` clips and M030 sad 1080p), "
        "`*_with_audio_1080p` via filby89/spectre (CC BY-NC-SA 4.0).",
        "- Neutral references of MEAD speakers never filmed neutral (M003, M026, M901): an identity + expression "
        "model (backend/data/neutral_reference.py) fitted on the non-MEAD clips only, the held-out talking "
        "people excluded: talking/ (MIT, Apache-2.0), "
        "talking/more/ (incl. CC BY-NC 4.0 and CC BY-NC-SA 4.0 sources) and video_only/ (MIT, Apache-2.0, "
        "CC BY-NC 4.0) for the within-person motion directions. With the non-commercial sources and MEAD's "
        "terms, the shipped LDM is for research / non-commercial use.",
    ]
    limits = [
        "- LDM: one displacement field per emotion, the same for every face, at 0.9 x the training speakers' "
        "real level-3 displacement, each face region (brows, eyes, nose, mouth, jaw) scaled to that region's own "
        "real level-3 size (ratios 0.79-1.00 against the mean of M030 and W009; gate ±30 %). Recipe: clip means "
        "minus the speaker's own neutral, not similarity-aligned; each speaker's part common to all their "
        "emotional takes removed (it is the person and the session: M030's and W009's agree at cosine 0.46); "
        "fields averaged with their left-right mirror image, contempt exempt. Until session 8 one factor (0.85 x) "
        "scaled the whole field, which left the fields brow-heavy (contempt and fear had 70 % of their energy in "
        "the brows and 6-7 % in the mouth; M030's real takes 40-49 % and 22-40 %) and the plate-level judge read "
        "both as surprised; per region, leave one speaker out improved (0.961 / 0.927 vs 0.963 / 0.955 x at "
        "0.85 x), leaving room for 0.9 x. Session 3 kept half of the common part, no mirror, 1.0 x (cosine with "
        "M030's own takes 0.88, now 0.78: fidelity to the one training speaker traded for transfer). Tried, no "
        "gain or failing a gate: rigid part of each clip target removed, blink-free clip means, amplitude "
        "matched in the image plane only (fear 0.69 x real), fields without depth (cosine with M030 0.78 -> "
        "0.65). Fields conditioned on the input face learnt the training faces rather than emotions (version 1, "
        "leave-one-speaker-out: 0.072 vs 0.050 no deformation).",
        "- LDM across people: people express emotions differently (cosine of the field with W009's real "
        "displacement: angry 0.74, happy 0.86, surprised 0.72, but sad -0.29: M030's sad lowers the brows). "
        "Leave one speaker out at the shipped amplitude the LDM beats \"no deformation\" on both speakers "
        "filmed neutral (clip mean: M030 0.0418 vs 0.0427, 0.979 x; W009 0.0398 vs 0.0419, 0.950 x; held-out "
        "direction cosine 0.45 / 0.54); at full real size a half-right direction does not (1.019 / 1.003 x), "
        "which is why 0.9 x is shipped. Paired frames (dominated by the different sentences of MEAD takes): "
        "M030 0.0492 vs 0.0478, W009 0.0465 vs 0.0416. On every held-out speaker filmed neutral the right "
        "emotion's field beats every other emotion's field (tests). Speakers never filmed neutral are not "
        "gated: their reference is made from the same emotional frames (direction cosines -0.16-0.59 "
        "reported).",
        "- The plate-level emotion judge (`emogene eval emotion`'s, trained on the judge pool only) on the "
        "driving landmarks of held-out speech at intensity 1 (default subject's face, 54 burst frames per motion "
        "draw, draws 0-4 pooled): tuning clip KristiNoem 45.2 % (the LDM before: 43.0 %), reported clip "
        "andrew_clip_1 38.2 % (before: 33.6 %; as `eval emotion` draws it by default, 27 burst frames x draws "
        "0-2: 44.9 %, before 41.2 %), above the judge's 35.4 % on real video of the unseen speaker M030. Per emotion (KristiNoem / andrew_clip_1): neutral 0.86 / 0.58 (speech motion itself is read as "
        "emotion on some frames, with any LDM), happy 0.76 / 0.54, sad 1.00 / 0.93, surprised 1.00 / 1.00; "
        "angry, contempt, disgusted and fear 0 with every field tried (0.85-1.0 x, one factor or per region). "
        "That is M030's way of showing them, not their size: M030's own real displacement on the same speech "
        "reads 35.4 % (angry, contempt, disgusted, fear and sad ~0, as the judge reads M030's real video), "
        "W009's (a judge-pool speaker) 98.2 %. More generator speakers filmed in every emotion are what would "
        "lift the four. The recipe was chosen by a rule written before the judge was read "
        "(real-data gates, then >= 2 points on the tuning clip). Measure: "
        "`ldm_eval.driving_judge_reading(..., audio=, seeds=)`.",
    ]
    return data, limits


def plot_fields(model, path: str | Path, face: np.ndarray | None = None, exaggerate: float = 5.0) -> Path:
    """Each emotion's displacement at intensity 1 drawn on a neutral face (x-y, canonical units, y up),
    arrows ``exaggerate`` x longer than the displacement so they can be seen. ``model``: an LDM or its
    fields ``[7, NUM_LANDMARKS, 3]``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from backend.data.mean_face import MEAN_FACE_68
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    face = np.asarray(MEAN_FACE_68 if face is None else face, np.float64)
    fig, axes = plt.subplots(2, 4, figsize=(12, 7.5))
    axes = axes.ravel()
    axes[-1].axis("off")
    for ax, emotion in zip(axes, NON_NEUTRAL):
        moved = face + exaggerate * _field_of(model, emotion)
        ax.scatter(face[:, 0], face[:, 1], s=4, c="#999999")
        ax.scatter(moved[:, 0], moved[:, 1], s=4, c="#d95f02")
        ax.quiver(face[:, 0], face[:, 1], moved[:, 0] - face[:, 0], moved[:, 1] - face[:, 1],
                  angles="xy", scale_units="xy", scale=1, width=0.006, color="#d95f02")
        ax.set_title(f"{emotion} (mean {mean_point_distance(_field_of(model, emotion)):.3f})", fontsize=9)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.suptitle(f"LDM displacement at intensity 1, drawn {exaggerate:g}x (grey: neutral, orange: emotion)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_driving_judge(metrics: dict, path: str | Path) -> Path:
    """Bars per emotion: the plate-level judge on the driving landmarks (all frames and eval emotion's bursts)
    at intensity 1, with the judge's mean on real video of unseen speakers as a line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    drive = metrics["driving_judge"]
    row = drive["intensity 1"]
    x = np.arange(len(EMOTIONS))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for k, (view, colour) in enumerate((("bursts", "#1b9e77"), ("all", "#7570b3"))):
        acc = row[view]
        ax.bar(x + (k - 0.5) * 0.4, [acc["per_emotion"].get(e, 0) for e in EMOTIONS], 0.4, color=colour,
               label=f"{view} frames (mean {acc['mean_over_emotions']:.2f})")
    if drive.get("judge_on_real_unseen_speakers") is not None:
        ax.axhline(drive["judge_on_real_unseen_speakers"], color="k", lw=1, ls="--",
                   label=f"judge on real video, unseen speakers (mean {drive['judge_on_real_unseen_speakers']:.2f})")
    ax.axhline(1 / len(EMOTIONS), color="#999999", lw=1, ls=":", label="chance")
    ax.set_xticks(x, EMOTIONS)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("judge accuracy")
    ax.set_title("Plate-level judge on the driving landmarks (intensity 1, no rendering)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.16, 0.98))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plots(metrics: dict, out: str | Path) -> list[Path]:
    """The section's PNGs: amplitude bars, leave-one-speaker-out bars, the fields drawn on a face, and the
    judge on the driving landmarks when measured."""
    out = Path(out)
    paths = [plot_amplitude(metrics, out / "ldm_amplitude.png"), plot_leave_one_out(metrics, out / "ldm_leave_one_out.png")]
    if metrics.get("fields") is not None:
        paths.append(plot_fields(metrics["fields"], out / "ldm_fields.png"))
    if metrics.get("driving_judge", {}).get("intensity 1"):
        paths.append(plot_driving_judge(metrics, out / "ldm_driving_judge.png"))
    return paths
