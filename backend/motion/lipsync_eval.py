"""Lip-sync evaluation on held-out people: does the generated mouth read like the real one?

For every held-out lip-sync clip (:mod:`lipsync_data`) and every method, landmarks are
generated from the clip's own audio with the clip's own mean face as identity and its
VAD closing the lips in silence (as the motion stage does), then compared with the real
track:

* mouth-opening correlation (Pearson, per clip, mean inner-lip gap per frame);
* velocity ratio generated / real (mean speed of the 20 mouth points per frame);
* lip closure: of the frames where the real lips are closed (opening below the clip's
  10th percentile), the share where the generated ones are closed too (same threshold);
* M-LMD / F-LMD (canonical units and source pixels).

Methods: the model under test, the static mean face, the loudness-envelope mouth
(:class:`LoudnessMouth`: the audio's frame energy, z-scored per recording, times a
displacement direction fitted by least squares on the training clips), real motion of
another recording (as lively as speech but not in sync: what M-LMD charges for motion
alone) and, when given, the model shipped before (any object with ``generate`` and
``rest_displacement``).

:func:`silence_closure` checks lips in pauses through the stage's own path
(:func:`generator.neutral_motion`: silero VAD, :func:`audio2motion.pause_gate`): the share of non-speech frames whose
opening is below the subject's 10th percentile of real opening.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from backend.motion.audio2motion import gate_pauses
from backend.motion.audio_features import frame_energy
from backend.motion.landmarks import MOUTH, mouth_opening
from backend.motion.metrics import lmd_pair, mouth_opening_correlation, pixels_per_unit
from backend.motion.speech_motion import animated_points
from backend.motion.tracks_data import TrackClip
from bridge.landmarks import NUM_LANDMARKS

CLOSED_PERCENTILE = 10.0


def _envelope(mel: np.ndarray, frames: int) -> np.ndarray:
    e = frame_energy(mel[: 4 * frames])
    e = np.convolve(np.pad(e, 1, mode="edge"), np.ones(3) / 3, "valid")
    return ((e - e.mean()) / (e.std() + 1e-6)).astype(np.float32)


@dataclass
class LoudnessMouth:
    """The loudness baseline: displacement = z-scored energy envelope x a fitted direction ``[NUM_LANDMARKS, 3]``."""
    direction: np.ndarray

    @classmethod
    def fit(cls, clips: list[TrackClip]) -> "LoudnessMouth":
        mask = animated_points()
        num, den = np.zeros((NUM_LANDMARKS, 3)), 0.0
        for c in clips:
            z = _envelope(c.mel, c.frames)
            d = c.landmarks - c.landmarks.mean(0, keepdims=True)
            num += np.einsum("t,tpk->pk", z, d)
            den += float(z @ z)
        direction = num / max(den, 1e-9)
        direction[~mask] = 0
        return cls(direction.astype(np.float32))

    def generate(self, clip: TrackClip) -> np.ndarray:
        return _envelope(clip.mel, clip.frames)[:, None, None] * self.direction


def model_landmarks(model, clip: TrackClip, temperature: float = 0.0, seed: int = 0, gate: bool = True) -> np.ndarray:
    """A model's landmarks for a clip's audio: own mean face as identity, own VAD closing the lips in
    pauses (:func:`audio2motion.pause_gate`, as the motion stage does; ``gate=False`` skips it)."""
    with torch.no_grad():
        disp = model.generate(torch.as_tensor(clip.mel[: 4 * clip.frames]), temperature=temperature, seed=seed)
        if gate:
            disp = gate_pauses(disp, model.rest_displacement, clip.speech, clip.landmarks.mean(0))
    return (disp.cpu().numpy() + clip.landmarks.mean(0)).astype(np.float32)


def mouth_speed(landmarks: np.ndarray) -> float:
    """Mean speed of the 20 mouth points (canonical units per frame)."""
    return float(np.linalg.norm(np.diff(landmarks[:, MOUTH], axis=0), axis=-1).mean())


def closure_recall(generated: np.ndarray, real: np.ndarray) -> float:
    """Of the frames where the real lips are closed (below their 10th percentile), the share closed in ``generated``."""
    op_r, op_g = mouth_opening(real), mouth_opening(generated)
    thr = np.percentile(op_r, CLOSED_PERCENTILE)
    closed = op_r <= thr
    return float(np.mean(op_g[closed] <= thr)) if closed.any() else float("nan")


def image_landmarks(clip: TrackClip) -> np.ndarray | None:
    npz = clip.meta.get("_path")
    if npz and Path(npz).is_file():
        with np.load(npz) as z:
            return z["landmarks_image"] if "landmarks_image" in z else None
    return None


def score(generated: np.ndarray, clip: TrackClip, ppu: float | None) -> dict:
    lmd = lmd_pair(generated, clip.landmarks)
    real_speed = mouth_speed(clip.landmarks)
    corr = mouth_opening_correlation(generated, clip.landmarks)
    return {"mouth_open_corr": corr if np.isfinite(corr) else 0.0,
            "velocity_ratio": mouth_speed(generated) / max(real_speed, 1e-9),
            "closure": closure_recall(generated, clip.landmarks),
            "m_lmd": lmd["m_lmd"], "f_lmd": lmd["f_lmd"],
            "m_lmd_px": lmd["m_lmd"] * ppu if ppu else None, "f_lmd_px": lmd["f_lmd"] * ppu if ppu else None}


def best_lag(generated: np.ndarray, real: np.ndarray, max_lag: int = 5) -> tuple[int, float]:
    """(lag, correlation) where the real mouth opening follows the generated one best: ``real[t + lag]`` vs
    ``generated[t]``. A clip whose audio and video are offset shows a lag far from 0 for any model that reads
    the audio; 0 or +-1 means the measurement is aligned (checked per held-out clip in the report)."""
    g, r = mouth_opening(generated), mouth_opening(real)
    scores = {}
    for lag in range(-max_lag, max_lag + 1):
        a, b = (g[: len(g) - lag], r[lag:]) if lag >= 0 else (g[-lag:], r[: len(r) + lag])
        if len(a) > 2 and a.std() > 1e-9 and b.std() > 1e-9:
            scores[lag] = float(np.corrcoef(a, b)[0, 1])
    if not scores:
        return 0, 0.0
    lag = max(scores, key=scores.get)
    return lag, scores[lag]


def other_motion(clip: TrackClip, donor: TrackClip) -> np.ndarray:
    """Real lower-face motion of another (training) recording, tiled to the clip's length: as lively as
    real speech, but not this speech (the "moves, but not in sync" baseline)."""
    d = donor.landmarks - donor.landmarks.mean(0, keepdims=True)
    d[:, ~animated_points()] = 0
    idx = np.arange(clip.frames) % donor.frames
    return (d[idx] + clip.landmarks.mean(0)).astype(np.float32)


def method_landmarks(methods: dict, clip: TrackClip, loudness: LoudnessMouth,
                     donor: TrackClip | None = None) -> dict[str, np.ndarray]:
    """Landmarks of every method for one clip (``methods``: name -> model; baselines added here)."""
    face = clip.landmarks.mean(0)
    out = {name: model_landmarks(m, clip) for name, m in methods.items()}
    if "model" in methods:      # diagnostic: what closing the lips in pauses costs on real speech excerpts
        out["model_no_pause_gate"] = model_landmarks(methods["model"], clip, gate=False)
    out["static_mean_face"] = np.repeat(face[None], clip.frames, 0)
    out["loudness_envelope"] = (loudness.generate(clip) + face).astype(np.float32)
    if donor is not None:
        out["other_real_motion"] = other_motion(clip, donor)
    return out


def evaluate_lipsync(methods: dict, test: list[TrackClip], train: list[TrackClip]) -> dict:
    """Per-clip and mean scores of every method (see the module docstring); ``methods``: name -> model."""
    loudness = LoudnessMouth.fit(train)
    donor = max(train, key=lambda c: c.frames) if train else None
    rows, traces = [], {}
    for c in test:
        ppu = pixels_per_unit(image_landmarks(c))
        lms = method_landmarks(methods, c, loudness, donor)
        lag = best_lag(lms["model_no_pause_gate"], c.landmarks) if "model_no_pause_gate" in lms else (0, 0.0)
        rows.append({"clip": c.name, "frames": c.frames, "pixels_per_unit": ppu, "sync_lag": lag[0],
                     "sync_lag_corr": lag[1],
                     **{name: score(g, c, ppu) for name, g in lms.items()}})
        traces[c.name] = {"real": mouth_opening(c.landmarks).tolist(),
                          **{name: mouth_opening(g).tolist() for name, g in lms.items()}}
    names = [k for k in rows[0] if isinstance(rows[0][k], dict)] if rows else []
    mean = {}
    for name in names:
        mean[name] = {}
        for k in rows[0][name]:
            vals = [r[name][k] for r in rows if r[name][k] is not None and np.isfinite(r[name][k])]
            mean[name][k] = float(np.mean(vals)) if vals else None
    return {"clips": [c.name for c in test], "methods": names, "per_clip": rows, "mean": mean,
            "traces": traces}


def closed_threshold(subject_track: np.ndarray) -> float:
    """The subject's closed-lips opening: the 10th percentile of its real mouth opening."""
    return float(np.percentile(mouth_opening(subject_track), CLOSED_PERCENTILE))


def silence_closure(models, audio: np.ndarray, subject_track: np.ndarray, vad_backend: str = "silero",
                    temperature: float = 1.0, seed: int = 0) -> dict:
    """Share of non-speech frames (the stage's VAD) with the mouth closed, through the stage's path."""
    from backend.motion.generator import neutral_motion
    with torch.inference_mode():
        motion = neutral_motion(models, np.asarray(audio, np.float32), subject_track.mean(0), temperature, seed,
                                vad_backend)
    thr = closed_threshold(subject_track)
    op = mouth_opening(motion.neutral)
    silent = ~motion.speech
    return {"frames": int(len(op)), "non_speech_frames": int(silent.sum()),
            "closed_share": float(np.mean(op[silent] <= thr)) if silent.any() else float("nan"),
            "closed_share_speech": float(np.mean(op[~silent] <= thr)) if (~silent).any() else float("nan"),
            "threshold": thr}



REPO = Path(__file__).resolve().parents[2]
NOISY_MEETING = REPO.parent / "shared" / "data" / "speech" / "noisy_audio_meeting_snr_10.wav"
SUBJECT_CLIP = "cnn2_25fps"          # the default subject: its real opening sets the closed-lips threshold


def seed_spread(model, clip: TrackClip, seeds=(0, 1, 2, 3)) -> dict:
    """How much seeds change the motion (temperature 1): mean |difference| between seeds vs the motion itself."""
    mel = torch.as_tensor(clip.mel[: 4 * clip.frames])
    with torch.no_grad():
        full = np.stack([model.generate(mel, temperature=1.0, seed=s).cpu().numpy() for s in seeds])
    runs = full[:, :, MOUTH]
    spread = float(np.abs(runs - runs.mean(0)).mean())
    size = float(np.abs(runs - runs.mean(1, keepdims=True)).mean())
    openings = [mouth_opening(r) for r in full]
    return {"seed_spread": spread, "motion_size": size, "relative": spread / max(size, 1e-12),
            "opening_std_by_seed": [float(np.std(o)) for o in openings]}


def lipsync_report(models, clips: list[TrackClip], previous=None, noisy_wav: str | Path | None = NOISY_MEETING,
                   vad_backend: str = "silero") -> dict:
    """The ``lipsync`` section of ``emogene eval motion`` (data summary, methods on held-out people, pauses)."""
    from backend.motion.lipsync_data import lip_sync_split
    split = lip_sync_split(clips)
    methods = {"model": models.audio2motion}
    if previous is not None:
        methods["previous_model"] = previous
    out = {"data": split.summary(), **evaluate_lipsync(methods, split.test, split.train)}
    subject = next((c for c in clips if c.name == SUBJECT_CLIP), None) or max(split.train, key=lambda c: c.frames)
    pauses = {"subject": subject.name,
              "silence_10s": silence_closure(models, np.zeros(160_000, np.float32), subject.landmarks, vad_backend)}
    if noisy_wav is not None and Path(noisy_wav).is_file():
        from backend.data.audio import load_audio
        pauses["noisy_meeting"] = silence_closure(models, load_audio(noisy_wav), subject.landmarks, vad_backend)
    out["pauses"] = pauses
    out["seeds"] = seed_spread(models.audio2motion, split.test[0]) if split.test else {}
    return out



# ------------------------------------------------------------------ report
METHOD_LABELS = {"model": "model", "model_no_pause_gate": "model, lips not closed in pauses (diagnostic)",
                 "previous_model": "model shipped before", "static_mean_face": "static mean face",
                 "loudness_envelope": "loudness envelope",
                 "other_real_motion": "real motion of another recording (lively, not in sync)"}


def _f(x, nd=3) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def markdown(section: dict) -> str:
    """The lip-sync part of the motion report."""
    d = section["data"]
    lines = ["## Lip sync on held-out people", "",
             f"Lip-sync data: training {d['train']['minutes']} min ({d['train']['speech_minutes']} min of speech), "
             f"{d['train']['speakers']} people, {d['train']['clips']} clips; held out {d['held_out']['minutes']} min, "
             f"{d['held_out']['speakers']} people ({', '.join(d['held_out_people'])}), {d['held_out']['clips']} clips. "
             f"Left out: {len(d['excluded'])} clips with audio (see metrics.json).", "",
             "| method | mouth-opening corr | velocity ratio | lip closure | M-LMD | F-LMD | M-LMD px | F-LMD px |",
             "|---|---|---|---|---|---|---|---|"]
    for m in section["methods"]:
        v = section["mean"][m]
        lines.append(f"| {METHOD_LABELS.get(m, m)} | {_f(v['mouth_open_corr'])} | {_f(v['velocity_ratio'], 2)} | "
                     f"{_f(v['closure'], 2)} | {_f(v['m_lmd'], 4)} | {_f(v['f_lmd'], 4)} | {_f(v['m_lmd_px'], 2)} | "
                     f"{_f(v['f_lmd_px'], 2)} |")
    lines += ["", "Velocity ratio: mean speed of the 20 mouth points, generated / real. Lip closure: of the frames "
              "where the real lips are closed (below the clip's 10th percentile of opening), the share closed in "
              "the generated track.", "", "Per clip mouth-opening correlation:", "",
              "| clip | frames | " + " | ".join(METHOD_LABELS.get(m, m) for m in section["methods"]) + " |",
              "|---|---|" + "---|" * len(section["methods"])]
    for r in section["per_clip"]:
        lines.append(f"| {r['clip']} | {r['frames']} | " + " | ".join(_f(r[m]["mouth_open_corr"]) for m in section["methods"]) + " |")
    if section["per_clip"] and "sync_lag" in section["per_clip"][0]:
        lines += ["", "Alignment check (model without the pause gate vs the real opening, lags -5..+5 frames; real "
                  "lips later than the audio-driven ones = positive): " + "; ".join(
                      f"{r['clip']} {r['sync_lag']:+d} (r {_f(r['sync_lag_corr'], 2)})" for r in section["per_clip"])
                  + ". Lags of 0 or +-1 frame: the held-out audio and video are aligned, so the correlations are "
                  "not capped by an offset."]
    p = section.get("pauses", {})
    if p:
        lines += ["", f"Lips in pauses (stage path, VAD + gate; closed = below the 10th percentile of {p['subject']}'s "
                  "real opening):", "", "| audio | frames | non-speech frames | closed in non-speech | closed in speech |",
                  "|---|---|---|---|---|"]
        for k in ("silence_10s", "noisy_meeting"):
            if k in p:
                v = p[k]
                lines.append(f"| {k} | {v['frames']} | {v['non_speech_frames']} | {_f(v['closed_share'], 3)} | "
                             f"{_f(v['closed_share_speech'], 3)} |")
    sd = section.get("seeds")
    if sd:
        lines += ["", f"Seeds (temperature 1, 4 seeds): mean mouth-point spread between seeds {_f(sd['seed_spread'], 5)} "
                  f"vs motion size {_f(sd['motion_size'], 5)} (relative {_f(sd['relative'], 2)}); mouth-opening std by "
                  "seed " + ", ".join(_f(x, 4) for x in sd["opening_std_by_seed"]) + "."]
    return "\n".join(lines) + "\n"


def plots(section: dict, out: Path) -> list[Path]:
    """Per-clip correlation bars and an example mouth-opening trace (generated vs real vs loudness)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    methods = [m for m in section["methods"] if m not in ("static_mean_face", "model_no_pause_gate",
                                                          "other_real_motion")]
    rows = section["per_clip"]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(rows)), 3.6))
    x = np.arange(len(rows))
    w = 0.8 / max(1, len(methods))
    for j, m in enumerate(methods):
        ax.bar(x + (j - (len(methods) - 1) / 2) * w, [r[m]["mouth_open_corr"] for r in rows], w,
               label=METHOD_LABELS.get(m, m))
    ax.axhline(0.6, color="k", lw=0.8, ls="--")
    ax.set_xticks(x, [r["clip"][:18] for r in rows], rotation=20, fontsize=8)
    ax.set_ylabel("mouth-opening correlation")
    ax.set_title("held-out people: generated vs real mouth opening")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "lipsync_correlation.png")
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)
    if rows:
        clip = max(rows, key=lambda r: r["frames"])["clip"]
        tr = section["traces"][clip]
        n = min(len(tr["real"]), 250)
        t = np.arange(n) / 25
        fig, ax = plt.subplots(figsize=(10, 3.2))
        z = lambda v: (np.asarray(v[:n]) - np.mean(v)) / (np.std(v) + 1e-9)
        ax.plot(t, z(tr["real"]), "k", lw=1.6, label="real")
        ax.plot(t, z(tr["model"]), "C0", label="model")
        if "previous_model" in tr:
            ax.plot(t, z(tr["previous_model"]), "C2", lw=0.8, label="model shipped before")
        ax.plot(t, z(tr["loudness_envelope"]), "C1", lw=0.8, alpha=0.8, label="loudness envelope")
        ax.set_xlabel("seconds")
        ax.set_ylabel("mouth opening (z-score)")
        ax.set_title(f"{clip}: first {n / 25:.0f} s")
        ax.legend(fontsize=7, ncol=4)
        fig.tight_layout()
        paths.append(out / "lipsync_trace.png")
        fig.savefig(paths[-1], dpi=90)
        plt.close(fig)
    return paths


#: licences of the lip-sync sources (../shared/data/README.md), by clip-name prefix
SOURCE_LICENCES = (
    ("WDA_", "HDTF via SadTalker, Apache-2.0"), ("retalking_", "video-retalking, Apache-2.0"),
    ("cnn2", "DFRF, MIT"), ("lieu", "EDTalk, Apache-2.0"), ("obama_20s", "EDTalk, Apache-2.0"),
    ("German_20s", "MimicTalk, MIT"), ("obama_weekly", "LIA, CC BY-NC 4.0"), ("vox_", "LIA, CC BY-NC 4.0"),
    ("lrs3_", "spectre / LRS3, CC BY-NC-SA 4.0"), ("grid_", "LipNet / GRID, MIT / CC BY 4.0"),
    ("selfie_", "JoyGen, Apache-2.0"), ("kitchen_", "LatentSync, Apache-2.0"), ("seated_", "LatentSync, Apache-2.0"),
    ("M003_", "spectre / MEAD, CC BY-NC-SA 4.0 + MEAD research terms"),
    ("M026_", "spectre / MEAD, CC BY-NC-SA 4.0 + MEAD research terms"),
    ("W023_", "spectre / MEAD, CC BY-NC-SA 4.0 + MEAD research terms"),
    ("M030_front_angry_level3_016", "spectre / MEAD, CC BY-NC-SA 4.0 + MEAD research terms"),
    ("M", "EAMM / MEAD, MIT + MEAD research terms"), ("W9", "EAMM / MEAD, MIT + MEAD research terms"),
    ("", "styletalk, MIT"))


def licence_of(clip_name: str) -> str:
    return next(lic for prefix, lic in SOURCE_LICENCES if clip_name.startswith(prefix))


def model_card_lines(section: dict, train_clips: list[TrackClip],
                     syncnet_clips: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(data lines, limits lines) for the audio-to-motion part of MODEL_CARD.md (``syncnet_clips``: the
    SyncNet's training clips when they differ from the audio-to-motion's)."""
    from backend.motion.lipsync_data import AUDIO_OFFSET
    d = section["data"]
    by_licence: dict[str, list[str]] = {}
    for c in train_clips:
        by_licence.setdefault(licence_of(c.name), []).append(c.name)
    m = section["mean"]["model"]
    names = sorted(c.name for c in train_clips)
    own_syncnet = syncnet_clips is not None and sorted(syncnet_clips) != names
    data = [f"- Audio-to-motion{'' if own_syncnet else ' and SyncNet'}: lip-sync clips (audio in sync with the "
            f"lips, `lipsync_data`) of "
            f"{d['train']['speakers']} people, {d['train']['clips']} clips, {d['train']['minutes']} min "
            f"({d['train']['speech_minutes']} min of speech): " + "; ".join(
                f"{lic}: {', '.join(sorted(names))}" for lic, names in sorted(by_licence.items())) + ".",
            *([f"- SyncNet: {len(syncnet_clips)} of those clips (trained before `lipsync_data.SYNC_RECHECKED` / `AUDIO_OFFSET` "
               f"added {', '.join(sorted(set(names) - set(syncnet_clips)))}; `syncnet.json` lists them)."]
              if own_syncnet else []),
            f"- Held out by person (never trained on by any model, SyncNet included): "
            f"{', '.join(d['held_out_people'])} ({d['held_out']['clips']} clips, {d['held_out']['minutes']} min).",
            f"- Left out of lip sync: {', '.join(f'{k} ({v})' for k, v in sorted(d['excluded'].items()))}.",
            "- Non-commercial sources (CC BY-NC, CC BY-NC-SA, MEAD research terms) are among the training data: "
            "the audio-to-motion and SyncNet weights inherit those terms."]
    limits = [f"- Audio-to-motion: {d['train']['minutes']} min of lip-sync video from {d['train']['speakers']} people, "
              "an average of 4 networks trained with different seeds (3 averaged: +0.03 on a validation split of the "
              "training people). Training clips whose audio is a few frames off the lips are re-aligned first "
              f"(`lipsync_data.AUDIO_OFFSET`: {', '.join(f'{k} {v:+d}' for k, v in sorted(AUDIO_OFFSET.items()))} "
              "frames; the four added in session 5 lifted that validation split by ~+0.04), and every person's "
              "motion is scaled to the median mouth-opening spread (`SpeechMotionTrainConfig.equalise_people`: "
              "+0.008 / +0.018 on two validation folds of the training people). "
              f"On held-out people the mouth opening correlates {m['mouth_open_corr']:.2f} with the real one. "
              "Not a measurement ceiling: the held-out clips' audio and video are aligned within one frame (the "
              "report's alignment check), and the same model follows the people it trained on at ~0.7 (GRID "
              "speakers ~0.9); the shortfall is generalisation to new voices and mouths from ~20 people "
              "(on a validation split of the training people, which people are left out moves the score more "
              "than any setting tried). Mouth shapes are generic.",
              "- Lips are pulled to closed lips (inner-lip gap 0 on the subject's face) in pauses (VAD non-speech "
              "runs of >= 12 frames, and at the start and end of the audio). "
              "Real people often keep their lips apart in pauses (breathing in), so this costs correlation on real "
              "excerpts: "
              f"{section['mean'].get('model_no_pause_gate', m)['mouth_open_corr']:.2f} without the gate vs "
              f"{m['mouth_open_corr']:.2f} with it (the 'lips not closed in pauses' row).",
              "- Seeds pick a speaking style (style code of the training people's spread); temperature 0 is the "
              "deterministic mean style. The upper face (brows, eyes) is not audio-driven: blinks and pose come "
              "from the stage."]
    return data, limits
