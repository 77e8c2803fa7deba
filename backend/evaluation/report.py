"""``emogene eval all``: run the motion and render evaluations and write ``eval_report/README.md``.

The report puts our numbers, the trivial baselines and the paper's reported numbers
side by side, with the caveats that make them comparable or not (data size,
resolution, subject), links the plots each evaluation wrote, and lists the exact
commands that reproduce every number.
"""
from __future__ import annotations

import json
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

#: Table I of the paper (MEAD): SSIM / PSNR / emotion % / M-LMD / F-LMD, and Table II (idle).
PAPER_TABLE = [
    ("EAT", ".479", "16.940", "19.389", "3.828", "7.858"),
    ("Wav2Lip", ".623", "19.428", "12.870", "4.043", "6.318"),
    ("ER-NeRF", ".660", "18.275", "12.323", "4.129", "7.189"),
    ("GeneFace++", ".729", "19.687", "11.834", "3.970", "6.334"),
    ("SyncTalk", ".732", "19.340", "13.290", "3.639", "6.240"),
    ("EmoGene", ".730", "19.698", "19.715", "3.602", "5.929"),
    ("real video", "1", "∞", "28.297", "0", "0"),
]
PAPER_IDLE = {"EmoGene": (0.0175, 0.0068), "GeneFace++": (0.030, 0.0208)}


@dataclass
class ReportConfig:
    out: Path = Path("eval_report")
    tracks: Path = Path("cache/tracks")
    subject: str = "default"
    render_frames: int = 24             # held-out frames of the working-resolution render metrics
    plate_frames: int | None = None     # held-out full-size plates (None: evaluate_plates' own default, 80)
    skip_motion: bool = False
    skip_render: bool = False
    skip_emotion: bool = False
    emotion_frames: int | None = None   # plates per take and motion draw (intensity 1) of eval emotion (None: its own)
    device: str = "cpu"
    work: Path = Path("cache/subjects")


def evaluation_subject_dir(name: str, work: Path) -> Path:
    """A folder with the subject's weights *and* its prepared frames (ground truth for held-out metrics).

    Shipped subjects carry weights but not the frames of their source video (data is never
    committed), so the frames are prepared again from ``subject.json``'s ``source_video``,
    with the same working resolution, and the shipped weights are copied beside them.
    """
    import shutil

    from backend.render.prepare import PrepareConfig, prepare_subject
    from backend.subjects import SubjectStore

    shipped = SubjectStore().path(name)
    if (shipped / "prepared" / "frames.npy").is_file():
        return shipped
    info = json.loads((shipped / "subject.json").read_text())
    videos = []   # one source video, or the clips of a capture session (``source_clips``)
    for source in info.get("source_clips") or [info["source_video"]]:
        video = Path(source)
        if not video.is_absolute():
            video = (Path(__file__).resolve().parents[2] / video).resolve()
        if not video.is_file():
            raise FileNotFoundError(f"subject {name!r} was trained on {source}, which is not here: "
                                    "its held-out frames cannot be evaluated")
        videos.append(video)
    target = work / f"eval_{name}"
    prepare_subject(videos if len(videos) > 1 else videos[0], target,
                    config=PrepareConfig(resolution=max(info["image_size"])), name=name)
    for weights in shipped.glob("nerf.*"):
        shutil.copy2(weights, target / weights.name)
    return target


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _paper_section() -> list[str]:
    lines = ["## The paper's reported numbers (MEAD, Table I)", "",
             "| method | SSIM | PSNR | emotion % | M-LMD | F-LMD |", "|---|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in PAPER_TABLE]
    lines += ["", "Idle motion (Table II, mean velocity / acceleration): "
              + "; ".join(f"{k} {v[0]} / {v[1]}" for k, v in PAPER_IDLE.items()), "",
              "Caveats: the paper trains on MEAD (60 speakers) and VoxCeleb2 (thousands of hours) and "
              "evaluates at 512² on MEAD with dlib landmarks in pixels; we train on ~6.5 minutes of "
              "talking clips and 16 MEAD clips of 2 speakers (../shared/data), measure landmark distances "
              "in canonical units (inter-ocular distance = 1) on mediapipe-derived landmarks, and render "
              "at a CPU working resolution. Their emotion classifier scores real MEAD video at 28.3 %; ours "
              "is a different, landmark-only classifier. Compare trends and baselines, not absolute values.", ""]
    return lines


def _section_from(folder: Path, title: str) -> list[str]:
    """Embed an evaluation's own markdown and link its plots."""
    lines = [f"## {title}", ""]
    for md in sorted(folder.glob("*.md")):
        text = md.read_text().strip().splitlines()
        # demote the evaluation's own headings one level below ours
        lines += [("#" + l) if l.startswith("#") else l for l in text] + [""]
    for image in sorted(folder.glob("*.png")):
        lines += [f"![{image.stem}]({folder.name}/{image.name})", ""]
    return lines


def write_report(config: ReportConfig) -> dict:
    """Run the evaluations (each into its own sub-folder) and write the combined report."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    summary: dict = {"commit": _git_commit(), "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
                     "device": config.device}
    commands = ["bash scripts/setup_venv.sh",
                "emogene prepare ../shared/data --out cache/tracks   # the tracks every motion number uses"]
    body: list[str] = []
    if not config.skip_motion:
        from backend.motion.eval_report import write_report as write_motion_report
        from backend.motion.evaluate import EvalConfig, evaluate_motion
        t = time.time()
        summary["motion"] = evaluate_motion(EvalConfig(tracks=str(config.tracks)))
        write_motion_report(summary["motion"], out / "motion")
        summary["motion_seconds"] = round(time.time() - t, 1)
        commands.append(f"emogene eval motion --tracks {config.tracks} --out {out / 'motion'}")
        body += _section_from(out / "motion", "Motion: audio-to-motion, lip sync, emotion (LDM), idle")
    if not config.skip_render:
        from backend.render.evaluate import evaluate_render
        t = time.time()
        subject_dir = evaluation_subject_dir(config.subject, Path(config.work))
        commands.append(f"# held-out frames of the shipped subject are re-extracted from its source video into "
                        f"{subject_dir} (they are not shipped)")
        summary["render"] = evaluate_render(subject_dir, out_dir=out / "render", frames=config.render_frames,
                                            device=config.device)
        from backend.render.evaluate_plates import evaluate_plates
        from backend.subjects import SubjectStore
        # full-size plates (NeRF + super-resolution) of the shipped subject vs the real source frames
        plate_counts = {} if config.plate_frames is None else {"frames": config.plate_frames}
        summary["plates"] = evaluate_plates(SubjectStore().path(config.subject), out / "render",
                                            device=config.device, **plate_counts)
        summary["render_seconds"] = round(time.time() - t, 1)
        commands.append(f"emogene eval render --subject {subject_dir} --frames {config.render_frames} "
                        f"--out {out / 'render'}")
        body += _section_from(out / "render", "Rendering: head + torso NeRF of the default subject")
    if not config.skip_emotion:
        from backend.evaluation.emotion_report import EmotionEvalConfig, evaluate_emotion
        from backend.evaluation.plate_emotion import PlateEvalConfig
        from backend.evaluation.emotion_report import reproduce_command
        t = time.time()
        plates = PlateEvalConfig() if config.emotion_frames is None else PlateEvalConfig(frames=config.emotion_frames)
        emotion_config = EmotionEvalConfig(out=out / "emotion", tracks=Path(config.tracks), plates=plates,
                                           device=config.device)
        summary["emotion"] = evaluate_emotion(emotion_config)
        summary["emotion_seconds"] = round(time.time() - t, 1)
        commands.append(reproduce_command(emotion_config))
        body += _section_from(out / "emotion", "Emotion on the plates: an independent judge trained on real video")
    summary["total_seconds"] = round(time.time() - started, 1)
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, default=str))
    header = ["# EmoGene for Blender — evaluation report", "",
              f"Commit `{summary['commit']}`, {summary['machine']}, device `{config.device}`, "
              f"{summary['total_seconds']} s in all. Every number below comes from the commands at the end; "
              "`metrics.json` beside this file holds them all.", ""]
    ablations = ["## Ablations", "",
                 "The paper's ablations appear in the motion section: *without the LDM* is the \"no deformation\" "
                 "row of the emotion table (landmark error and classifier accuracy on neutral input), and "
                 "*without pose sampling* is the idle-motion row without sampling.", ""]
    reproduce = ["## Reproduce", "", "```bash"] + commands + [f"emogene eval all --out {out}", "```", ""]
    (out / "README.md").write_text("\n".join(header + body + ablations + _paper_section() + reproduce))
    return summary
