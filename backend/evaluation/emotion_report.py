"""``emogene eval emotion``: the judge's bar on real video, the plates' score, plots and a markdown section.

Writes ``<out>/metrics.json``, ``<out>/emotion.md``, ``confusion_<subject>.png`` (plates at
intensity 1 beside the judge on real video of unseen speakers), ``accuracy_per_emotion.png``
and ``contact_sheet_<subject>.png`` (neutral | each emotion at intensity 1, same frame).
Rendered and tracked takes are cached under ``cache/eval_emotion/``, one file per subject and motion
draw, keyed by the *contents* of the subject's and the motion models' files, the renderer's and motion
code and the draw's settings, so re-judging does not re-render and a candidate subject folder (same
name, same file sizes) never reuses another's plates.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backend.evaluation.emotion_judge import JudgeConfig
from backend.evaluation.plate_emotion import (DEFAULT_AUDIO, PlateEvalConfig, SubjectPlates, Take, judge_subject,
                                             native_plate_size)
from bridge.emotions import EMOTIONS

#: session 8's judge, chosen by scripts/select_emotion_judge.py: swapped pools (train on the generator pool, test on
#: the judge pool's speakers with a measured neutral), each setting by its marginal mean; never on plates nor on the
#: reported direction. `emogene eval emotion --judge-neutral-bias 0` reproduces it.
SESSION8_JUDGE = JudgeConfig(window=9, use_depth=False, mouth_weight=0.25, hidden=32, weight_decay=1e-3, steps=300,
                             augment_scales=(0.5, 0.75, 1.5, 2.0), augment_mirror=False)
#: the selected judge: session 8's plus a neutral prior of 2 on the neutral logit, chosen on real video only
#: (scripts/select_emotion_judge.py --talking-heads: the selection half of the real talking heads read neutral
#: 57 -> 69 % under the plate burst protocol, the MEAD bar and the swapped direction within their guards;
#: confirmation half 46 -> 60 %)
TALKING_HEADS_JUDGE = dataclasses.replace(SESSION8_JUDGE, neutral_bias=2.0)
#: the judge eval emotion uses (session 9; `--judge-neutral-bias 0` = SESSION8_JUDGE). Session 10 measured its bar over
#: training seeds 0-9 (30.7 +- 5.3 %, 24.4-39.7; seed 0 34.9 %) and seed ensembles of 3 / 5 / 7 members
#: (`--judge-seeds`); none met the rule of cache/s10_judge/decision.md (bar within 2 points over 4 disjoint seed sets:
#: ranges 10.9 / 5.7 / 6.4), so the single seed-0 judge stays and the report states the seed spread beside its bar.
#: Region-anchored features (JudgeConfig.anchored, scripts/select_emotion_judge.py --anchored) raised the bar to
#: 52.4 +- 4.7 % over seeds 0-9 but not the talking heads' neutral (selection half 66.3 -> 67.7 %, rule: +5), so not
#: adopted (cache/s10_anchor/decision.md).
#: Session 11: training copies shifted by the pose leak at real head-angle deviations (x2), leak and angles from the
#: real talking heads' selection half only (JudgeConfig.augment_pose; scripts/select_emotion_judge.py --pose-augment,
#: rule cache/s11_judge/decision.md written before measuring): over training seeds 0-9 the confirmation half's neutral
#: 56.0 -> 61.3 % (rule: +5; per-seed median +2.6), bar 33.0 -> 39.1 %, bar's neutral 76.0 -> 78.9 %, swapped
#: 49.5 -> 48.8 %: the one candidate of four that passed.
POSE_AUGMENTED_JUDGE = dataclasses.replace(TALKING_HEADS_JUDGE, augment_pose=4, augment_pose_scale=2.0)
DEFAULT_JUDGE = POSE_AUGMENTED_JUDGE
REPO = Path(__file__).resolve().parents[2]


@dataclass
class EmotionEvalConfig:
    out: Path = Path("eval_report/emotion")
    tracks: Path = Path("cache/tracks")
    subjects: tuple[str, ...] | None = None          # None: every subject the SubjectStore lists
    plates: PlateEvalConfig = field(default_factory=PlateEvalConfig)
    judge: JudgeConfig = field(default_factory=lambda: JudgeConfig(**DEFAULT_JUDGE.to_dict()))
    cache: Path | None = Path("cache/eval_emotion")
    device: str = "cpu"


def _git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=REPO, check=True).stdout.strip()
        return head + (" (+ uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


#: files of a subject or model folder that do not change a rendered plate (reports, plots, run logs)
_NOT_RENDER_INPUTS = ("*.md", "*metrics*.json", "training_runs.json", "*curves*.png", "*sheet*.png", "*.confusion.png",
                      "*.words.txt")
_digests: dict[tuple, bytes] = {}


def _file_digest(path: Path) -> bytes:
    """sha256 of a file's contents (memoised within one process per path, inode, size, mtime and ctime: a rewrite
    changes ctime even when it keeps the size and restores the mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _digests:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _digests[key] = h.digest()
    return _digests[key]


def _fingerprint(subject_dir: Path, config: PlateEvalConfig, device: str) -> str:
    """Hash of the contents of the subject's and the motion models' files (nerf.safetensors, sr, track,
    background, configs; not reports), the renderer's and motion code and one draw's plate settings."""
    from backend.motion.model_io import SHIPPED_MODELS

    h = hashlib.sha256()
    for folder in (subject_dir, SHIPPED_MODELS):
        for p in sorted(folder.glob("*")):
            if p.is_file() and not any(p.match(pattern) for pattern in _NOT_RENDER_INPUTS):
                h.update(f"{p.name}:".encode() + _file_digest(p))
    for src in sorted((REPO / "backend" / "render").glob("*.py")) + sorted((REPO / "backend" / "motion").glob("*.py")):
        h.update(hashlib.sha256(src.read_bytes()).digest())
    h.update(json.dumps({k: str(v) for k, v in config.__dict__.items()}, sort_keys=True).encode())
    h.update(f"device:{device}".encode())
    return h.hexdigest()[:16]


def _save_plates(path: Path, plates: SubjectPlates) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"frames": plates.frames}
    for i, t in enumerate(plates.takes):
        for k in ("plates", "landmarks", "found", "driving", "bursts"):
            arrays[f"{i}_{k}"] = getattr(t, k)
        arrays[f"{i}_positions"] = t.position_array()
    meta = {"subject": plates.subject, "warnings": plates.warnings, "seed": plates.seed,
            "takes": [[t.emotion, t.intensity, t.reused] for t in plates.takes]}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)
    tmp.replace(path)


def _load_plates(path: Path) -> SubjectPlates:
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        takes = [Take(e, float(i), *(z[f"{n}_{k}"] for k in ("plates", "landmarks", "found", "driving", "bursts")),
                      positions=z[f"{n}_positions"], reused=bool(reused))
                 for n, (e, i, reused) in enumerate(meta["takes"])]
        return SubjectPlates(meta["subject"], z["frames"], takes, meta["warnings"], seed=int(meta.get("seed", 0)))


def cache_path(cache: Path, name: str, subject_dir: Path, config: PlateEvalConfig, seed: int, device: str) -> Path:
    """The cache file of one subject's takes for motion draw ``seed`` rendered on ``device`` (a resolved one)."""
    return Path(cache) / f"{name}_s{seed}_{_fingerprint(subject_dir, config.draw(seed), device)}.npz"


def subject_plates(name: str, stage_set, store, config: EmotionEvalConfig, progress,
                   seed: int | None = None) -> tuple[SubjectPlates, bool]:
    """Rendered + tracked takes of one subject and motion draw (default: the first of ``config.plates.seeds``),
    from the cache when nothing changed. (plates, from_cache)"""
    from backend.evaluation.plate_emotion import render_subject_takes

    subject_dir = store.path(name)
    draw = config.plates.draw(config.plates.seed if seed is None else seed)
    cached = None
    if config.cache is not None:
        cached = cache_path(config.cache, name, subject_dir, config.plates, draw.seed, str(stage_set.device))
        if cached.is_file():
            return _load_plates(cached), True
    plates = render_subject_takes(name, stage_set, subject_dir, draw, progress=progress)
    if cached is not None:
        _save_plates(cached, plates)
    return plates, False


def draw_head_rotations(stage_set, name: str, config: PlateEvalConfig, seed: int) -> np.ndarray:
    """The head rotations ``[n, 3, 3]`` the motion stage asks the renderer for on one draw's judged job frames
    (``config.burst_frames``; the intensity-0 take: the pose does not depend on the emotion). Reads no plate; run it
    once per draw and derive what needs the pose from it."""
    from backend.evaluation.plate_emotion import _job, load_speech, run_motion

    draw = config.draw(seed)
    job = _job(name, load_speech(draw), "neutral", 0.0, draw)
    state, _ = run_motion(stage_set, job)
    return np.asarray(state["rotation"])[draw.burst_frames(job.frame_count)]


def head_motion_sd(rotation: np.ndarray) -> list[float]:
    """Pitch, yaw, roll SD (degrees, rounded to 0.01) of ``[n, 3, 3]`` head rotations."""
    from backend.evaluation.pose_leak import head_angles

    return [round(float(v), 2) for v in head_angles(rotation).std(0)]


def keyed_per_draw(subject_metrics: dict) -> dict[int, float]:
    """The plates' keyed neutral read neutral per motion draw, from :func:`judge_subject`'s metrics."""
    rows = subject_metrics.get("draws")
    if rows:
        return {int(r["seed"]): r["neutral_stays_neutral"] for r in rows}
    return {int(subject_metrics["seeds"][0]): subject_metrics["neutral_stays_neutral"]}


def evaluate_emotion(config: EmotionEvalConfig) -> dict:
    """Judge on real video, then every subject's plates; writes the report files and returns the metrics."""
    import torch
    from tqdm import tqdm

    from backend.data.mead_pools import GENERATOR_SPEAKERS
    from backend.evaluation.judge_plate_size import bar_at_plate_sizes
    from backend.evaluation.judge_real_video import judge_on_real_video, judge_seed_spread, leave_one_speaker_out, \
        own_neutral_only, seed_judges
    from backend.evaluation.judge_talking_heads import load_talking_clips, neutral_share_in_motion_range, \
        talking_head_neutral
    from backend.evaluation.own_footage import own_footage_report
    from backend.evaluation.plate_emotion import plates_over_judges
    from backend.composition import StageSet
    from backend.subjects import SubjectStore

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    started = time.time()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    real = judge_on_real_video(config.tracks, config.judge)
    # the instrument's spread: one judge per training seed (the reported judge's own seed reused)
    judges = seed_judges(real.train, config.judge, pose=real.pose, trained=real.judge)
    metrics: dict = {"commit": _git_commit(), "judge": real.metrics,
                     "judge_talking_heads": talking_head_neutral(real.judge, config.tracks, GENERATOR_SPEAKERS,
                                                                 config.plates.frames, config.plates.burst),
                     "judge_seed_spread": judge_seed_spread(judges, real.test, load_talking_clips(config.tracks),
                                                            config.plates.frames, config.plates.burst),
                     "judge_leave_one_speaker_out": {
                         "judge_pool": leave_one_speaker_out(real.train, config.judge, real.pose)},
                     "plate_settings": {k: str(v) for k, v in config.plates.__dict__.items()}, "subjects": {}}
    store = SubjectStore()
    names = list(config.subjects or store.names())
    unknown = [n for n in names if n not in store.names()]
    if unknown:
        raise LookupError(f"unknown subject(s) {', '.join(unknown)}; this backend has: {', '.join(store.names())}")
    metrics["judge_at_plate_size"] = bar_at_plate_sizes(
        judges, own_neutral_only(real.test), config.tracks,
        [config.plates.resolution or native_plate_size(store.path(n)) for n in names])
    stage_set = StageSet(device=config.device, subjects=store)
    if not stage_set.can_render:
        raise RuntimeError("this build has no plate renderer: the plate-level emotion evaluation needs one")
    seeds = config.plates.seeds
    takes_total = len(names) * len(seeds) * (1 + len(EMOTIONS) * len(config.plates.intensities))
    bar = tqdm(total=takes_total, desc="eval emotion: render + track takes", unit="take")
    all_plates = {}
    try:
        for name in names:
            t = time.time()
            draws, cached = [], []
            for seed in seeds:
                plates, from_cache = subject_plates(name, stage_set, store, config, seed=seed,
                                                    progress=lambda msg: (bar.set_postfix_str(msg), bar.update(1)))
                if from_cache:
                    bar.update(len(plates.takes))
                draws.append(plates)
                cached.append(from_cache)
            all_plates[name] = draws
            m = judge_subject(real.judge, draws, ceiling_bursts=config.plates.ceiling_bursts)
            m["judge_seed_pairs"] = plates_over_judges(judges, draws)
            m["seconds"] = round(time.time() - t, 1)
            m["from_cache"] = all(cached)
            m["draws_from_cache"] = [s for s, c in zip(seeds, cached) if c]
            rotations = {s: draw_head_rotations(stage_set, name, config.plates, s) for s in seeds}   # once per draw
            m["asked_head_motion_deg"] = {str(s): head_motion_sd(r) for s, r in rotations.items()}
            m["own_footage"] = own_footage_report(real.judge, store.path(name), draws, rotations, keyed_per_draw(m))
            spread = [float(np.hypot(*v[:2])) for v in m["asked_head_motion_deg"].values()]
            m["real_heads_moving_alike"] = neutral_share_in_motion_range(
                metrics["judge_talking_heads"]["bursts"]["per_clip"], min(spread), max(spread))
            metrics["subjects"][name] = m
    finally:
        bar.close()
    metrics["seconds"] = round(time.time() - started, 1)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    write_plots(metrics, all_plates, out)
    (out / "emotion.md").write_text(markdown(metrics, config))
    return metrics


# ---------------------------------------------------------------------------------------- plots
def _confusion_axes(ax, confusion, title: str) -> None:
    c = np.asarray(confusion, np.float64)
    rows = c.sum(1, keepdims=True)
    share = np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)
    ax.imshow(share, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(EMOTIONS)), [e[:4] for e in EMOTIONS], rotation=60, fontsize=7)
    ax.set_yticks(range(len(EMOTIONS)), [e[:4] for e in EMOTIONS], fontsize=7)
    ax.set_xlabel("judge says", fontsize=8)
    ax.set_ylabel("keyed / true", fontsize=8)
    ax.set_title(title, fontsize=8)
    for i in range(len(EMOTIONS)):
        for j in range(len(EMOTIONS)):
            if c[i, j]:
                ax.text(j, i, f"{share[i, j]:.2f}", ha="center", va="center", fontsize=5,
                        color="white" if share[i, j] > 0.5 else "black")


def write_plots(metrics: dict, all_plates: dict[str, list[SubjectPlates]], out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real = metrics["judge"]["unseen_speakers"]
    for name, m in metrics["subjects"].items():
        panels = [(real["confusion"], f"judge on real video, unseen speakers\n(mean over emotions "
                                      f"{real['mean_over_emotions']:.2f})")]
        for key in ("intensity 1", "intensity 0.5"):
            if key in m["by_intensity"]:
                s = m["by_intensity"][key]
                panels.append((s["plates"]["confusion"], f"{name} plates, {key}\n(mean {s['plates']['mean_over_emotions']:.2f})"))
        if "intensity 1" in m["by_intensity"]:
            s = m["by_intensity"]["intensity 1"]["driving_landmarks"]
            panels.append((s["confusion"], f"{name} driving landmarks, intensity 1\n(mean {s['mean_over_emotions']:.2f})"))
        fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.6))
        for ax, (conf, title) in zip(np.atleast_1d(axes), panels):
            _confusion_axes(ax, conf, title)
        fig.tight_layout()
        fig.savefig(out / f"confusion_{name}.png", dpi=130)
        plt.close(fig)
    # per-emotion accuracy bars: real video vs each subject's plates at intensity 1
    fig, ax = plt.subplots(figsize=(8, 3.8))
    series = [("real video, unseen speakers", real["per_emotion"])]
    for name, m in metrics["subjects"].items():
        for key in ("intensity 1", "intensity 0.5"):
            if key in m["by_intensity"]:
                series.append((f"{name} plates, {key}", m["by_intensity"][key]["plates"]["per_emotion"]))
    width = 0.8 / len(series)
    for k, (label, per) in enumerate(series):
        ax.bar(np.arange(len(EMOTIONS)) + k * width - 0.4 + width / 2, [per.get(e, np.nan) for e in EMOTIONS],
               width, label=label)
    ax.axhline(1 / len(EMOTIONS), color="grey", ls="--", lw=1, label="chance (1/8)")
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("frame accuracy")
    ax.set_title("the judge per emotion: real video of unseen speakers vs our plates", fontsize=9)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    fig.tight_layout()
    fig.savefig(out / "accuracy_per_emotion.png", dpi=130)
    plt.close(fig)
    transfer_plot(metrics, out / "transfer_ratio.png")
    if metrics.get("judge_seed_spread"):
        seed_spread_plot(metrics, out / "judge_seed_spread.png")
    if metrics.get("judge_talking_heads"):
        talking_heads_plot(metrics, out / "talking_heads_neutral.png")
    for name, plates in all_plates.items():
        contact_sheet(plates, out / f"contact_sheet_{name}.png")


def seed_spread_plot(metrics: dict, path: Path) -> None:
    """Per training seed, the single judge's bar (and its neutral, and its reading of real talking heads) beside the
    reported judge's bar: how far one trained judge is a point estimate of a noisy instrument."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spread = metrics["judge_seed_spread"]
    real = metrics["judge"]["unseen_speakers"]
    panels = [("bar", "the bar: mean over 8 emotions,\nunseen MEAD speaker", real["mean_over_emotions"]),
              ("bar_neutral", "the bar's neutral\n(unseen speaker's neutral clip)", real["per_emotion"].get("neutral")),
              ("talking_heads_neutral", "real talking heads read neutral\n(burst protocol)",
               metrics.get("judge_talking_heads", {}).get("bursts", {}).get("neutral_share"))]
    panels = [p for p in panels if p[0] in spread]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.6), squeeze=False)
    for ax, (key, title, reported) in zip(axes[0], panels):
        values = np.asarray(spread[key]["per_seed"]) * 100
        x = np.arange(len(values))
        ax.scatter(x, values, s=30, alpha=0.8, label="one judge per training seed")
        ax.errorbar([len(values) + 1], [values.mean()], yerr=[[values.std(ddof=1) if len(values) > 1 else 0.0]],
                    fmt="s", color="black", capsize=4, label="mean ± SD over seeds")
        if reported is not None:
            ax.axhline(100 * reported, color="tab:red", ls="--", lw=1, label="the reported judge")
        ax.set_xticks(list(x) + [len(values) + 1], [str(s) for s in spread["seeds"]] + ["all"], fontsize=7)
        ax.set_xlabel("training seed", fontsize=8)
        ax.set_ylabel("%")
        ax.set_title(title, fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=3, frameon=False)
    fig.suptitle("the judge's training seed alone, real video only", fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)


def talking_heads_plot(metrics: dict, path: Path) -> None:
    """Per real talking clip: head motion (pitch/yaw SD over the judged frames) against the share read neutral
    (burst protocol), beside the MEAD neutral clips read the same way and the bar's neutral rate."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = metrics["judge_talking_heads"]
    fig, ax = plt.subplots(figsize=(9.0, 4.0))
    for key, marker, label in (("bursts", "o", "talking clip, reference =\nthe bursts' mean (a plate take's)"),
                               ("clip", "x", "talking clip, reference =\nthe whole-clip mean")):
        per = t.get(key, {}).get("per_clip", {})
        if per:
            ax.scatter([float(np.hypot(*v["pose_sd_deg"][:2])) for v in per.values()],
                       [v["neutral"] for v in per.values()], marker=marker, s=22, alpha=0.75, label=label)
    mead = t.get("mead_neutral_bursts", {})
    if mead:
        ax.scatter([float(np.hypot(*v["pose_sd_deg"][:2])) for v in mead.values()], [v["neutral"] for v in mead.values()],
                   marker="*", s=120, color="black", label="MEAD neutral clip, burst protocol")
    bar = metrics["judge"]["unseen_speakers"]["per_emotion"].get("neutral")
    if bar is not None:
        ax.axhline(bar, color="grey", ls="--", lw=1, label=f"the bar: unseen MEAD\nneutral clip ({bar:.0%})")
    ax.set_xlabel("head motion over the judged frames: hypot(pitch SD, yaw SD), degrees")
    ax.set_ylabel("share of frames read neutral")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("the judge on real people talking neutrally (unlabelled speech)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def transfer_plot(metrics: dict, path: Path) -> None:
    """Bars: per region, the share of the asked displacement the tracked plates show, per subject."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from backend.evaluation.plate_emotion import TRANSFER_REGIONS

    subjects = {n: m["transfer"] for n, m in metrics["subjects"].items() if "transfer" in m}
    if not subjects:
        return
    regions = list(TRANSFER_REGIONS)
    fig, ax = plt.subplots(figsize=(7, 3.4))
    width = 0.8 / len(subjects)
    for k, (name, t) in enumerate(subjects.items()):
        size = metrics["subjects"][name]["plate_size"][0]
        x = np.arange(len(regions)) + k * width - 0.4 + width / 2
        bars = ax.bar(x, [t["ratio"][r] for r in regions], width, label=f"{name} ({size}²) plates")
        if "tracker_ceiling" in t:
            ax.scatter(x, [t["tracker_ceiling"][r] for r in regions], marker="_", s=250, linewidths=2,
                       color=bars[0].get_facecolor(), edgecolors="black",
                       label=f"{name}: tracker ceiling (2-D warp of the neutral plates)")
    ax.axhline(1.0, color="black", lw=1)
    ax.axhline(0.8, color="grey", ls="--", lw=1, label="aim 0.8")
    ax.set_xticks(range(len(regions)), [r.replace("_", " ") for r in regions], fontsize=8)
    ax.set_ylabel("shown / asked displacement")
    ax.set_title("transfer ratio at intensity 1: FaceMesh on the plates vs the driving landmarks", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def contact_sheet(plates: SubjectPlates | list[SubjectPlates], path: Path) -> None:
    """Neutral (intensity 0) | each emotion, the same frame (the middle of the middle burst that every take
    renders), 256 px tiles: one row per motion draw at the top intensity, then the first draw's other intensities."""
    import cv2

    draws = [plates] if isinstance(plates, SubjectPlates) else list(plates)
    first = draws[0]
    neutral = first.neutral
    shared = set(neutral.position_array().tolist())
    for t in first.takes:
        shared &= set(t.position_array().tolist())
    shared_bursts = np.unique(neutral.bursts[neutral.at(np.array(sorted(shared), np.int64))]) if shared \
        else np.unique(neutral.bursts)
    mid_burst = shared_bursts[len(shared_bursts) // 2]
    sel = np.flatnonzero(neutral.bursts == mid_burst)
    position = int(neutral.position_array()[sel[len(sel) // 2]])
    intensities = sorted({t.intensity for t in first.takes if t.intensity > 0}, reverse=True)
    plan = [(d, intensities[0]) for d in draws] + [(first, i) for i in intensities[1:]] if intensities else []
    rows = []
    for draw, intensity in plan:
        tag = f" s{draw.seed}" if len(draws) > 1 else ""
        tiles = [draw.neutral.plates[draw.neutral.at(np.array([position]))[0]]]
        for e in EMOTIONS[1:]:
            take = draw.take(e, intensity)
            tiles.append(take.plates[take.at(np.array([position]))[0]])
        labels = [f"neutral@0{tag}"] + [f"{e}@{intensity:g}{tag}" for e in EMOTIONS if e != "neutral"]
        scaled = []
        for tile, label in zip(tiles, labels):
            # tiles of 256 px: 128² plates upscaled, 512² plates area-downsampled (keeps the sheet small)
            t = cv2.resize(tile, (256, 256), interpolation=cv2.INTER_AREA if tile.shape[0] > 256 else cv2.INTER_CUBIC)
            t = np.ascontiguousarray(t)
            cv2.putText(t, label, (4, t.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
            scaled.append(t)
        rows.append(np.concatenate(scaled, axis=1))
    sheet = np.concatenate(rows, axis=0)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


# ------------------------------------------------------------------------------------- markdown
def _ci(interval) -> str:
    """" [lo-hi]" of a 95 % interval (shares), or nothing."""
    if not interval or any(v is None or (isinstance(v, float) and np.isnan(v)) for v in interval):
        return ""
    return f" [{100 * interval[0]:.0f}-{100 * interval[1]:.0f}]"


def _pct(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f} %"


def plate_size_markdown(result: dict | None) -> list[str]:
    """The bar re-read at the plates' sizes (:mod:`~backend.evaluation.judge_plate_size`)."""
    if not result or len(result.get("sizes", {})) < 2:
        return []
    side = result["source_size"]
    cells = [f"{side if name == 'source' else name}²: {_pct(v['mean'])} ± {100 * v['sd']:.1f}"
             for name, v in result["sizes"].items()]
    return ["**Is a small plate a handicap?** The unseen speaker's square real crops "
            f"({len(result['clips'])} clips, {side}²) tracked as plates are, at their own size and area-downsampled "
            f"to the smaller plate sizes, read by the judges of training seeds {result['seeds'][0]}-"
            f"{result['seeds'][-1]} (mean ± SD, points): " + ", ".join(cells) + ".", ""]


def markdown(metrics: dict, config: EmotionEvalConfig) -> str:
    j = metrics["judge"]
    real = j["unseen_speakers"]
    p = config.plates
    lines = ["# Emotion on the plates (plate-level judge)", "",
             f"Commit `{metrics['commit']}`; {metrics['seconds']} s. An independent judge (FaceMesh -> canonical iBUG "
             "landmarks -> displacement from the person's own neutral face -> small classifier) trained on real "
             "MEAD video of the judge pool only, never on generated landmarks.", "",
             "## The bar: the judge on real video of people it never saw", "",
             f"Trained on {len(j['train_clips'])} clips of {', '.join(sorted({c.split('_')[0] for c in j['train_clips']}))}; "
             f"tested on {len(j['test_clips'])} clips of {', '.join(sorted({c.split('_')[0] for c in j['test_clips']}))} "
             "(the generator's speakers; disjointness asserted on the clip lists). The bar for the plates is the "
             "first row: unseen speakers whose neutral reference is measured from their own neutral clip, as a "
             "plate person's is (its intensity-0 take).", "",
             "| | mean over emotions | frame accuracy | clip majority vote | frames / clips |", "|---|---|---|---|---|",
             f"| judge | **{_pct(real['mean_over_emotions'])}**{_ci(real.get('ci95'))} | "
             f"{_pct(real['frame_accuracy'])} | "
             f"{_pct(real.get('clip_majority_accuracy'))} | {real['frames']} / {real.get('clips')} |",
             *seed_spread_rows(j, metrics.get("judge_seed_spread")),
             f"| always neutral | {_pct(real['always_neutral']['mean_over_emotions'])} | "
             f"{_pct(real['always_neutral']['frame_accuracy'])} | "
             f"{_pct(real['always_neutral'].get('clip_majority_accuracy'))} | |"]
    every = j.get("unseen_speakers_all") or {}
    if every and every.get("frames") != real.get("frames"):
        lines.append(f"| judge, also speakers with a reconstructed reference | {_pct(every['mean_over_emotions'])} | "
                     f"{_pct(every['frame_accuracy'])} | {_pct(every.get('clip_majority_accuracy'))} | "
                     f"{every['frames']} / {every.get('clips')} |")
    for s, m in (every or real).get("per_speaker", {}).items():
        lines.append(f"| {s} only | {_pct(m['mean_over_emotions'])} | {_pct(m['frame_accuracy'])} | "
                     f"{_pct(m.get('clip_majority_accuracy'))} | {m['frames']} / {m.get('clips')} |")
    lines += ["", "Per emotion (real video, unseen speakers): "
              + ", ".join(f"{e} {_pct(v)}" for e, v in real["per_emotion"].items()), ""]
    lines += seed_spread_markdown(metrics)
    lines += plate_size_markdown(metrics.get("judge_at_plate_size"))
    lines += talking_heads_markdown(metrics)
    loso = metrics.get("judge_leave_one_speaker_out", {}).get("judge_pool", {})
    if loso:
        lines += ["Leave-one-speaker-out inside the judge pool (mean over the held-out speaker's emotions): "
                  + ", ".join(f"{s} {_pct(m['mean_over_emotions'])} ({', '.join(m['per_emotion'])})"
                              for s, m in loso.items()), ""]
    lines += ["Neutral reference per speaker: " + "; ".join(
        f"{s}: {r['source']}" for s, r in sorted(j["references"].items()))
        + (". Skipped: " + "; ".join(f"{s} ({why})" for s, why in j["skipped_speakers"].items())
           if j["skipped_speakers"] else "") + ".", "",
        f"Judge settings: {json.dumps(j['config'])}. Chosen by `scripts/select_emotion_judge.py` (swapped pools: "
        "train on the generator pool, test on the judge pool's speakers with a measured neutral; each setting by its "
        "marginal mean, then the training augmentation), never on plates nor on the direction reported here; its "
        "neutral prior (`neutral_bias`, added to the neutral logit) by `scripts/select_emotion_judge.py "
        "--talking-heads` on the selection half of the real talking heads above (burst protocol), with this bar and "
        "the swapped direction as guards (`--judge-neutral-bias 0` = session 8's judge); its pose augmentation "
        "(`augment_pose` training copies of each MEAD clip shifted by FaceMesh's pose leak at real head-angle "
        "deviations x `augment_pose_scale`, leak and angles fitted on the selection half's talking heads only) by "
        "`scripts/select_emotion_judge.py --pose-augment` over training seeds 0-9 (rule: confirmation half's neutral "
        "+5 points, bar, its neutral and the swapped direction within 2; `--judge-pose-copies 0` = sessions 9-10's "
        "judge).", "",
        "## The plates", "",
        f"Speech: `{Path(p.audio).name}`, first {p.seconds:g} s, 25 fps. **{len(p.seeds)} motion draws** (job seeds "
        f"{', '.join(map(str, p.seeds))}: the motion stage's pose and motion sampling; one draw is noise, the keyed "
        "neutral of one subject read 67 % on one seed and 17 % on the next) render the same job frames: bursts of "
        f"{p.burst} consecutive frames spread over the speech, {p.frames} frames per take and draw at intensity 0 and "
        f"{p.intensities[0]:g} ({-(-p.frames // p.burst)} bursts), {p.frames_other} at the other intensities (a subset "
        f"of those bursts); the tracker ceiling uses {p.ceiling_bursts} bursts of the first draw. (Cost: the default "
        "6 draws x 27 plates per take are 3x session 7's one draw of 54 plates; fewer bursts per draw so that "
        "there can be several draws, whose spread one draw cannot show. Sessions 8-9 used 3 draws; the default "
        "subject's keyed neutral read 81 / 4 / 93 % on them, so session 10 doubled them.) A take whose render "
        "inputs equal its draw's intensity-0 take's (keyed neutral) reuses those plates. Each draw is judged against "
        "its own intensity-0 take (the neutral reference is its mean tracked shape; the driving landmarks' is their "
        "mean), then the readings are pooled. Intervals: 95 % bootstrap resampling (draw, burst) units, so the "
        "draw-to-draw spread is inside them. Plates at "
        + (f"{p.resolution}²" if p.resolution else "each subject's native product size ("
           + ", ".join(f"{n} {m['plate_size'][1]}²" for n, m in metrics["subjects"].items())
           + "; the subject's limit when it has a super-resolution network, else its working size)")
        + " composited over the subject's background, tracked like real video. Frames where FaceMesh finds no "
        "face count as wrong. *Plates read as their driving landmarks* (diagnostic, not the acceptance): the share "
        "of frames where the judge names the same emotion on the tracked plate as on the landmarks the renderer was "
        "given, so a renderer is neither credited for an emotion the input lacks nor blamed for one it lacks.", "",
        "| subject | takes | mean over 8 emotions (plates) | frame acc. | clip vote | neutral stays neutral | "
        "driving landmarks (diagnostic) | plates read as their driving landmarks | judge on real video |",
        "|---|---|---|---|---|---|---|---|---|"]
    for name, m in metrics["subjects"].items():
        for key, s in m["by_intensity"].items():
            if key == "neutral@0":
                continue
            agree = s.get("plates_agree_with_driving", {})
            units = f"{s['plates'].get('draws', 1)} draws, {s['plates'].get('bursts', '?')} draw-bursts"
            lines.append(f"| {name} | {key} ({units}) | "
                         f"**{_pct(s['plates']['mean_over_emotions'])}**{_ci(s['plates'].get('ci95'))} | "
                         f"{_pct(s['plates']['frame_accuracy'])} | {_pct(s['plates'].get('clip_majority_accuracy'))} | "
                         f"{_pct(m['neutral_stays_neutral'])}{_ci(m.get('neutral_stays_neutral_ci95'))} | "
                         f"{_pct(s['driving_landmarks']['mean_over_emotions'])}{_ci(s['driving_landmarks'].get('ci95'))} | "
                         f"{_pct(agree.get('share'))}{_ci(agree.get('ci95'))} | "
                         f"{_pct(real['mean_over_emotions'])} |")
    per_draw = {n: m["draws"] for n, m in metrics["subjects"].items() if m.get("draws")}
    if per_draw:
        top = f"intensity {p.intensities[0]:g}" if p.intensities else "neutral@0"
        lines += ["", f"Per motion draw ({top}; the spread the pooled numbers average over):", "",
                  "| subject | draw (seed) | mean over 8 (plates) | keyed neutral read neutral | driving landmarks | "
                  "plates read as driving | head motion asked (pitch / yaw SD) |", "|---|---|---|---|---|---|---|"]
        for name, rows in per_draw.items():
            asked = metrics["subjects"][name].get("asked_head_motion_deg", {})
            for row in rows:
                r = row.get(top, {})
                motion = asked.get(str(row["seed"]))
                lines.append(f"| {name} | {row['seed']} | {_pct(r.get('plates'))} | "
                             f"{_pct(row['neutral_stays_neutral'])} | {_pct(r.get('driving_landmarks'))} | "
                             f"{_pct(r.get('plates_agree_with_driving'))} | "
                             + (f"{motion[0]:.1f}° / {motion[1]:.1f}° |" if motion else "– |"))
        lines += motion_alike_markdown(metrics)
    lines += own_footage_markdown(metrics)
    bar = real["mean_over_emotions"]
    neutral_bar = real["per_emotion"].get("neutral", float("nan"))
    spread = metrics.get("judge_seed_spread")
    bar_spread = (f" (the judge's training seed alone moves it: seeds {spread['seeds'][0]}-{spread['seeds'][-1]} "
                  f"{_spread(spread['bar'])})") if spread else ""
    for name, m in metrics["subjects"].items():
        s = m["by_intensity"].get("intensity 1")
        if s:
            mean = s["plates"]["mean_over_emotions"]
            met = mean >= bar and m["neutral_stays_neutral"] >= neutral_bar
            lines += ["", f"**{name}: acceptance {'met' if met else 'not met'}**: plates at intensity 1 "
                      f"{_pct(mean)} vs the judge's {_pct(bar)} on real video of unseen speakers{bar_spread}; "
                      "keyed neutral "
                      f"read as neutral on {_pct(m['neutral_stays_neutral'])} of plates (real neutral video: "
                      f"{_pct(neutral_bar)})."]
            lines += seed_pairs_markdown(name, m.get("judge_seed_pairs"), spread)
            lines += ["", f"{name}, intensity 1, per emotion on the plates: "
                      + ", ".join(f"{e} {_pct(v)}" for e, v in s["plates"]["per_emotion"].items())]
        diffs = {k: v for k, v in m["pixel_difference_vs_neutral"].items() if k != "neutral@0"}
        lines += ["", f"{name}: mean absolute pixel difference to the neutral (intensity 0) plates, of 255: "
                  + ", ".join(f"{k} {v:.1f}" for k, v in diffs.items()),
                  "", f"{name}: face found on {100 * np.mean(list(m['face_found_fraction'].values())):.0f} % of plates "
                  f"({m['plate_size'][1]}x{m['plate_size'][0]}); {m['seconds']} s"
                  + (" (takes from cache)" if m.get("from_cache") else "") + "."]
    lines += transfer_markdown(metrics)
    lines += ["", "Reproduce: `" + reproduce_command(config) + "`", ""]
    return "\n".join(lines)


def _spread(row: dict) -> str:
    return (f"{100 * row['mean']:.1f} ± {100 * row['sd']:.1f} % ({100 * row['min']:.1f}-{100 * row['max']:.1f})")


def seed_spread_rows(judge_metrics: dict, spread: dict | None) -> list[str]:
    """The bar table's row of single judges differing only in their training seed (mean ± SD, min-max)."""
    if not spread:
        return []
    seeds = spread["seeds"]
    members = judge_metrics.get("config", {}).get("ensemble_seeds") or []
    name = f"the {len(members)}-seed ensemble's settings" if len(members) > 1 else "same settings"
    return [f"| {name}, one judge per training seed {seeds[0]}-{seeds[-1]} (mean ± SD (min-max)) | "
            f"{_spread(spread['bar'])} | | | {len(seeds)} judges |"]


def seed_spread_markdown(metrics: dict) -> list[str]:
    """A sentence under the bar: what the training seed alone does to the bar, its neutral and the talking heads."""
    spread = metrics.get("judge_seed_spread")
    if not spread:
        return []
    seeds = f"{spread['seeds'][0]}-{spread['seeds'][-1]}"
    config = metrics["judge"].get("config", {})
    members = config.get("ensemble_seeds") or []
    which = (f"this report's judge averages {len(members)} judges (training seeds {', '.join(map(str, members))})"
             if len(members) > 1 else f"this report's judge is one of them (training seed {config.get('seed', 0)})")
    talking = spread.get("talking_heads_neutral")
    return [f"The judge's training seed alone moves the bar (single judges, identical but for the seed, {seeds}; "
            f"`judge_seed_spread.png`): mean over emotions {_spread(spread['bar'])}, its neutral "
            f"{_spread(spread['bar_neutral'])}"
            + (f", real talking heads read neutral {_spread(talking)}" if talking else "")
            + f"; {which}. Read a plate score against this spread, not against one judge's bar alone (each subject "
            "below also gets the acceptance read once per seed, each judge against its own bar; `--judge-seeds 3` re-judges with another single seed, `--judge-seeds 0,1,2,3,4` with a seed ensemble; "
            "session 10: ensembles of 3 / 5 / 7 seeds still moved the bar by 10.9 / 5.7 / 6.4 points over 4 disjoint "
            "seed sets, cache/s10_judge/decision.md).", ""]


def seed_pairs_markdown(name: str, pairs: dict | None, spread: dict | None) -> list[str]:
    """The acceptance read once per judge training seed: each seed's judge on the plates against the same judge's
    bar (paired), so the judge's own noise largely cancels instead of deciding "met" or "not met"."""
    if not pairs or not spread:
        return []
    bar = dict(zip(spread["seeds"], spread["bar"]["per_seed"]))
    neutral = dict(zip(spread["seeds"], spread["bar_neutral"]["per_seed"]))
    seeds = [s for s in pairs["seeds"] if s in bar]
    if not seeds:
        return []
    plates = dict(zip(pairs["seeds"], pairs["plates"]))
    keyed = dict(zip(pairs["seeds"], pairs["neutral_stays_neutral"]))
    d = 100 * np.array([plates[s] - bar[s] for s in seeds])
    dn = 100 * np.array([keyed[s] - neutral[s] for s in seeds])
    both = sum(plates[s] >= bar[s] and keyed[s] >= neutral[s] for s in seeds)
    sd = lambda v: f" ± {v.std(ddof=1):.1f}" if len(v) > 1 else ""   # noqa: E731
    return ["", f"{name}, the same plates read by one judge per training seed ({seeds[0]}-{seeds[-1]}), each against "
            f"its own bar: plates minus bar {d.mean():+.1f}{sd(d)} points ({d.min():+.1f} to {d.max():+.1f}), "
            f"plates >= bar for {int((d >= 0).sum())} of {len(seeds)} seeds; keyed neutral minus the bar's neutral "
            f"{dn.mean():+.1f}{sd(dn)} points, >= for {int((dn >= 0).sum())} of {len(seeds)}; both (the acceptance) "
            f"for {both} of {len(seeds)} seeds."]


def talking_heads_markdown(metrics: dict) -> list[str]:
    """The neutral rows: the bar's still MEAD head beside real people talking with natural head motion, read with
    the plates' burst protocol (empty when the metrics have no such measurement)."""
    t = metrics.get("judge_talking_heads")
    if not t:
        return []
    neutral_bar = metrics["judge"]["unseen_speakers"]["per_emotion"].get("neutral")
    bursts = -(-t["frames"] // t["burst"])
    lines = [f"Neutral on real video (what \"neutral stays neutral\" is compared with): the bar is the unseen MEAD "
             f"speaker's neutral clip, a still head in a studio. Real people talking neutrally move their heads; read "
             f"with the plates' protocol ({bursts} burst{'s' if bursts > 1 else ''} of {t['burst']} consecutive frames "
             f"per clip, the judge's window inside each burst, neutral reference = the bursts' mean tracked shape, as a "
             f"plate take's) on the talking clips of `../shared/data/talking/` "
             f"(unlabelled speech, mostly neutral; {', '.join(t['excluded'])} excluded):", "",
             "| real video | read neutral | read instead (share of frames) | by head-motion tercile "
             "(pitch/yaw SD, deg: neutral) | clips / speakers |", "|---|---|---|---|---|",
             f"| MEAD neutral clip of the unseen speaker(s), whole clip (the bar) | **{_pct(neutral_bar)}** | | | |"]
    for clip_id, m in t.get("mead_neutral_bursts", {}).items():
        lines.append(f"| MEAD `{clip_id}`, burst protocol | {_pct(m['neutral'])} | | pose SD "
                     f"{m['pose_sd_deg'][0]:.1f}/{m['pose_sd_deg'][1]:.1f} | 1 / 1 |")
    for key, label in (("bursts", "burst protocol"), ("clip", "reference = the clip's whole-length mean")):
        r = t.get(key)
        if not r:
            continue
        instead = sorted(((v, e) for e, v in r["read_as"].items() if e != "neutral" and v >= 0.005), reverse=True)
        terciles = "; ".join(f"{b['pose_sd_deg'][0]:.1f}-{b['pose_sd_deg'][1]:.1f}: {_pct(b['neutral_share'])}"
                             for b in r["by_pose"])
        name = "**judge on real neutral talking heads (burst protocol)**" if key == "bursts" else \
            f"judge on real neutral talking heads ({label})"
        lines.append(f"| {name} | **{_pct(r['neutral_share'])}**{_ci(r['ci95'])} | "
                     + ", ".join(f"{e} {_pct(v)}" for v, e in instead) + f" | {terciles} | "
                     f"{r['clips']} / {r['speakers']} |")
    b = t.get("bursts", {})
    if b:
        halves = b.get("halves", {})
        lines += ["", f"Speakers weigh equally (interval: speakers resampled). Spearman correlation over clips of head "
                  f"motion and the share read neutral: {b['spearman_pose_spread_vs_neutral']:+.2f}. Speaker halves "
                  f"(ranked by head motion, alternately; the judge's neutral prior and pose augmentation were chosen, "
                  f"and the augmentation's leak and angles fitted, on the selection half only: the confirmation half is "
                  f"the clean reading): selection {_pct(halves.get('selection'))}, confirmation "
                  f"{_pct(halves.get('confirmation'))}. A plate whose head moves like a real talking head cannot be "
                  "expected to read more neutral than these rows.", ""]
    return lines


def motion_alike_markdown(metrics: dict) -> list[str]:
    """Per subject: the real talking heads whose head motion lies in the range the subject's draws ask for, and the
    share of them the judge reads neutral (what a real head moving like these plates reads)."""
    lines: list[str] = []
    for name, m in metrics["subjects"].items():
        alike = m.get("real_heads_moving_alike")
        if alike and alike.get("clips"):
            low, high = alike["range_deg"]
            lines += ["", f"{name}: its draws ask for {low:.1f}-{high:.1f}° of head motion (hypot of pitch and yaw SD "
                         f"on the judged frames); real talking heads moving that much read neutral on "
                         f"{_pct(alike['neutral_share'])} ({alike['clips']} clips / {alike['speakers']} speakers, "
                         "burst protocol)."]
    return lines


def own_footage_markdown(metrics: dict) -> list[str]:
    """The reference for the keyed neutral: per subject and draw, the plates' keyed neutral beside the subject's own
    neutral real frames at the same head poses (nearest tracked rotation), read with the same judge and protocol."""
    subjects = {n: m["own_footage"] for n, m in metrics["subjects"].items() if m.get("own_footage")}
    if not subjects:
        return []
    lines = ["", "Keyed neutral against the subject's own real footage at the same head poses (diagnostic, not the "
             "acceptance): for every judged frame of a draw, the subject's tracked real frame nearest in head rotation "
             "(from its neutral footage), read by the same judge with the same burst protocol (window inside each "
             "burst, reference = those real frames' own mean). Plates reading less neutral than the person's own face "
             "at those poses would mean the renderer adds emotion; reading as much or more means it does not.", "",
             "| subject | draw (seed) | keyed neutral on the plates | own real footage at the draw's poses | "
             "pose mismatch (max / mean) | distinct real frames |", "|---|---|---|---|---|---|"]
    sentences = []
    for name, o in subjects.items():
        if "skipped" in o:
            lines.append(f"| {name} | – | | skipped: {o['skipped']} | | |")
            sentences.append(f"{name}: no own-footage reference ({o['skipped']}).")
            continue
        for row in o["draws"]:
            lines.append(f"| {name} | {row['seed']} | {_pct(row['plates_keyed_neutral'])} | {_pct(row['read_neutral'])}"
                         f" | {row['pose_mismatch_deg_max']:.1f}° / {row['pose_mismatch_deg_mean']:.1f}° | "
                         f"{row['distinct_real_frames']} of {row['frames']} |")
        lines.append(f"| **{name}** | **pooled, {len(o['draws'])} draws** | **{_pct(o['plates_keyed_neutral'])}** | "
                     f"**{_pct(o['read_neutral'])}**{_ci(o.get('read_neutral_ci95'))} | "
                     f"{o['pose_mismatch_deg_max']:.1f}° max | |")
        keyed, own = o["plates_keyed_neutral"], o["read_neutral"]
        verdict = "" if keyed is None else (" The plates read at least as neutral as the person's own face there." if
                                            keyed >= own else " The plates read less neutral than the person's own "
                                            "face there.")
        if o["pose_mismatch_deg_max"] > 1.0:
            verdict += (" Its neutral footage does not hold every asked pose (the nearest real frame lies up to "
                        f"{o['pose_mismatch_deg_max']:.1f}° away and is reused across frames): an approximate reference.")
        sentences.append(f"{name}: keyed neutral on the plates {_pct(keyed)} vs the subject's own real footage at the "
                         f"same poses {_pct(own)} ({o['frames']} frames, {len(o['draws'])} draws; reference footage: "
                         f"{o['source']}; pose mismatch at most {o['pose_mismatch_deg_max']:.1f}°).{verdict}")
    return lines + [""] + [s for sentence in sentences for s in (sentence, "")][:-1]


def reproduce_command(config: EmotionEvalConfig) -> str:
    """The ``emogene eval emotion`` command line of this configuration."""
    p = config.plates
    out = config.out.parent if config.out.name == "emotion" else config.out
    parts = [f"emogene eval emotion --out {out}", f"--seeds {','.join(map(str, p.seeds))}",
             f"--frames {p.frames} --frames-other {p.frames_other} --seconds {p.seconds:g}"]
    if p.burst != PlateEvalConfig.burst:
        parts.append(f"--burst {p.burst}")
    if Path(p.audio).resolve() != DEFAULT_AUDIO.resolve():
        parts.append(f"--audio {p.audio}")
    if config.subjects:
        parts.append(f"--subjects {','.join(config.subjects)}")
    if p.resolution:
        parts.append(f"--size {p.resolution}")
    if config.judge.neutral_bias != DEFAULT_JUDGE.neutral_bias:
        parts.append(f"--judge-neutral-bias {config.judge.neutral_bias:g}")
    if config.judge.augment_pose != DEFAULT_JUDGE.augment_pose:
        parts.append(f"--judge-pose-copies {config.judge.augment_pose}")
    if config.judge.member_seeds != DEFAULT_JUDGE.member_seeds:
        parts.append(f"--judge-seeds {','.join(map(str, config.judge.member_seeds))}")
    return " ".join(parts)


def transfer_markdown(metrics: dict) -> list[str]:
    """The transfer-ratio table: per subject and region, the share of the asked expression the plates show."""
    from backend.evaluation.plate_emotion import TRANSFER_REGIONS

    subjects = {n: m for n, m in metrics["subjects"].items() if "transfer" in m}
    if not subjects:
        return []
    regions = list(TRANSFER_REGIONS)
    lines = ["", "## Where the expression goes: transfer ratio (intensity 1)", "",
             "Per region, the least-squares slope of the tracked plate displacement (FaceMesh on the plates, minus "
             "the intensity-0 take's) on the asked displacement (the driving landmarks minus the intensity-0 "
             "take's), both in the image plane in inter-ocular units, pooled over the motion draws (each against its "
             "own intensity-0 take); 1 = the plates show what was asked (aim >= 0.8). It tests the renderer and the tracker together; the *tracker ceiling* row separates them: "
             "the same ratio when the neutral plates are warped in 2-D (an image-plane RBF warp moving their tracked "
             "landmarks by the asked displacement) instead of rendered, i.e. what FaceMesh shows of a perfect "
             "geometric transfer (first draw only). `transfer_ratio.png`.", "",
             "| subject | plate | | " + " | ".join(r.replace("_", " ") for r in regions) + " |",
             "|---|---|---|" + "---|" * len(regions)]
    for name, m in subjects.items():
        t = m["transfer"]
        lines.append(f"| {name} | {m['plate_size'][1]}² | rendered plates | "
                     + " | ".join(f"**{t['ratio'][r]:.2f}**" for r in regions) + " |")
        if "tracker_ceiling" in t:
            lines.append(f"| {name} | {m['plate_size'][1]}² | tracker ceiling (2-D warp) | "
                         + " | ".join(f"{t['tracker_ceiling'][r]:.2f}" for r in regions) + " |")
    first = next(iter(subjects.values()))["transfer"]
    lines += ["", "Asked displacement, RMS per landmark (inter-ocular units): "
              + ", ".join(f"{r.replace('_', ' ')} {first['asked_rms_displacement'][r]:.3f}" for r in regions)]
    for name, m in subjects.items():
        per = m["transfer"]["per_emotion"]
        lines += ["", f"{name}, per emotion: " + "; ".join(
            f"{e} " + " ".join(f"{v:.2f}" for v in per[e].values()) for e in per)
            + " (regions in the table's order)"]
    return lines
