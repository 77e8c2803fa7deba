"""Writing ``evaluate_motion`` results: ``metrics.json``, ``motion_report.md`` and PNG plots."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bridge.emotions import EMOTIONS, NUM_EMOTIONS


def _f(x, nd=4) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{nd}f}"


def markdown(metrics: dict) -> str:
    a, s, l, e, i = (metrics[k] for k in ("audio2motion", "sync", "ldm", "emotion", "idle"))
    lines = ["# Motion evaluation", "",
             f"Held-out talking clips (speakers unseen in training): {', '.join(metrics['held_out']['talking'])}  ",
             f"Held-out MEAD frames: {metrics['held_out']['mead']}", "",
             *([f"Counted as training although the track files hold them out (the shipped speech-motion model or "
                f"SyncNet trained on them): {', '.join(metrics['held_out']['trained_on_not_held_out'])}", ""]
               if metrics['held_out'].get('trained_on_not_held_out') else []),
             "## Audio-to-motion (model, deterministic) vs mean face with static mouth", "",
             "| | M-LMD | F-LMD | M-LMD px | F-LMD px | mouth-opening corr |", "|---|---|---|---|---|---|",
             f"| model | {_f(a['vae_m_lmd'])} | {_f(a['vae_f_lmd'])} | {_f(a['vae_m_lmd_px'], 2)} | {_f(a['vae_f_lmd_px'], 2)} | {_f(a['mouth_open_corr'], 3)} |",
             f"| baseline | {_f(a['baseline_m_lmd'])} | {_f(a['baseline_f_lmd'])} | {_f(a['baseline_m_lmd_px'], 2)} | {_f(a['baseline_f_lmd_px'], 2)} | 0 |",
             "", "Units: canonical (inter-ocular distance 1) and pixels of the source video.", "",
             "## Lip sync (landmark SyncNet)", "", "| track | confidence | mean abs offset (frames) | similarity at 0 |",
             "|---|---|---|---|"]
    for k, name in (("real", "real"), ("generated", "generated (model)"), ("shifted_5", "real shifted 5 frames")):
        lines.append(f"| {name} | {_f(s[k]['confidence'], 3)} | {_f(s[k]['abs_offset'], 2)} | {_f(s[k]['similarity'], 3)} |")
    lines += ["", "Per clip offsets (real / generated / shifted): " + "; ".join(
        f"{r['clip']}: {r['real']['offset']:+d} / {r['generated']['offset']:+d} / {r['shifted_5']['offset']:+d}"
        for r in s["per_clip"]), "",
        "## Emotion deformation (LDM) on held-out MEAD frames", "",
        f"Landmark error (mean per point, canonical): LDM {_f(l['landmark_error']['ldm'])} vs no deformation "
        f"{_f(l['landmark_error']['no_deformation'])}", "", "| emotion | LDM | no deformation |", "|---|---|---|"]
    for k, v in l["landmark_error"]["per_emotion"].items():
        lines.append(f"| {k} | {_f(v['ldm'])} | {_f(v['no_deformation'])} |")
    lines += ["", "Lip-sync cost on held-out talking clips deformed to each of the 7 emotions (intensity 1):", "",
              "| LDM | SyncNet confidence | mean abs offset | mean mouth-opening change |", "|---|---|---|---|"]
    for k, v in l["lip_sync_cost"].items():
        lines.append(f"| {k} | {_f(v['sync_confidence'], 3)} | {_f(v['abs_offset'], 2)} | {_f(v['mouth_opening_change'])} |")
    lines += ["", "## Emotion score (classifier accuracy, chance 12.5 %)", "",
              "| emotion | real held-out frames | LDM(held-out neutral) | neutral input |", "|---|---|---|---|"]
    for name in EMOTIONS:
        lines.append(f"| {name} | {_f(e['real_clips'].get(name), 2)} | {_f(e['ldm_output'].get(name), 2)} | "
                     f"{_f(e['neutral_input'].get(name), 2)} |")
    m = e["mean"]
    lines += [f"| **mean** | {_f(m['real_clips'], 3)} | {_f(m['ldm_output'], 3)} | {_f(m['neutral_input'], 3)} |", "",
              ""]
    lines += ["## Idle motion in silent spans (>= 12 frames)", "", f"Clips: {', '.join(i['clips'])}. {i['units']}.", "",
              "| | velocity | acceleration |", "|---|---|---|"]
    for k, v in i["pose"].items():
        lines.append(f"| pose {k} | {_f(v['velocity'], 5)} | {_f(v['acceleration'], 5)} |")
    for k, v in i["landmarks"].items():
        lines.append(f"| landmarks {k} | {_f(v['velocity'], 5)} | {_f(v['acceleration'], 5)} |")
    if metrics.get("lipsync"):
        from backend.motion.lipsync_eval import markdown as lipsync_markdown
        lines += ["", lipsync_markdown(metrics["lipsync"]).rstrip("\n")]
    if metrics.get("ldm_generalisation"):
        from backend.motion.ldm_eval import markdown as ldm_markdown
        lines += ["", ldm_markdown(metrics["ldm_generalisation"]).rstrip("\n")]
    return "\n".join(lines) + "\n"


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plots(metrics: dict, out: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = []
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for kind, style in (("real", "-"), ("generated", "--"), ("shifted_5", ":")):
        profiles = [r[kind]["profile"] for r in metrics["sync"]["per_clip"]]
        n = len(profiles[0]) // 2
        ax.plot(range(-n, n + 1), np.nanmean(profiles, 0), style, label=kind)
    ax.set_xlabel("offset (frames, mouth after audio)")
    ax.set_ylabel("mean SyncNet similarity")
    ax.legend()
    paths.append(_save(fig, out / "sync_profiles.png"))

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    e = metrics["emotion"]
    x = np.arange(len(EMOTIONS))
    for j, (k, label) in enumerate((("real_clips", "real held-out"), ("ldm_output", "LDM(neutral)"),
                                    ("neutral_input", "neutral input"))):
        axes[0].bar(x + (j - 1) * 0.27, [e[k].get(n, 0) for n in EMOTIONS], 0.27, label=label)
    axes[0].axhline(1 / NUM_EMOTIONS, color="k", lw=0.8, ls="--")
    axes[0].set_xticks(x, EMOTIONS, rotation=45)
    axes[0].set_title("classifier accuracy per emotion")
    axes[0].legend(fontsize=7)
    le = metrics["ldm"]["landmark_error"]["per_emotion"]
    names = list(le)
    xi = np.arange(len(names))
    axes[1].bar(xi - 0.2, [le[n]["ldm"] for n in names], 0.4, label="LDM")
    axes[1].bar(xi + 0.2, [le[n]["no_deformation"] for n in names], 0.4, label="no deformation")
    axes[1].set_xticks(xi, names, rotation=45)
    axes[1].set_title("held-out MEAD landmark error")
    axes[1].legend(fontsize=7)
    paths.append(_save(fig, out / "emotion_ldm.png"))

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    a = metrics["audio2motion"]
    axes[0].bar(["VAE M", "base M", "VAE F", "base F"],
                [a["vae_m_lmd"], a["baseline_m_lmd"], a["vae_f_lmd"], a["baseline_f_lmd"]],
                color=["C0", "C1", "C0", "C1"])
    axes[0].set_title("LMD (canonical units)")
    idle = metrics["idle"]["pose"]
    axes[1].bar(list(idle), [v["velocity"] for v in idle.values()])
    axes[1].set_title("pose velocity in silence (rad/frame)")
    paths.append(_save(fig, out / "lmd_idle.png"))
    if metrics.get("lipsync"):
        from backend.motion.lipsync_eval import plots as lipsync_plots
        paths += lipsync_plots(metrics["lipsync"], out)
    if metrics.get("ldm_generalisation"):
        from backend.motion.ldm_eval import plots as ldm_plots
        paths += ldm_plots(metrics["ldm_generalisation"], out)
    return paths


def write_report(metrics: dict, out: str | Path) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    (out / "motion_report.md").write_text(markdown(metrics))
    return {"metrics": out / "metrics.json", "report": out / "motion_report.md",
            **{p.stem: p for p in plots(metrics, out)}}
