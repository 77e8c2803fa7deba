"""Weight-space mix of a subject NeRF and its fine-tune (backend/render/weight_mix.py)."""
import pytest
import torch

from backend.render.weight_mix import mix_state_dicts


def _state(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    occupied = torch.rand(4, 4, 4, generator=g) > 0.5
    return {"head_field.mlp.0.weight": torch.randn(3, 2, generator=g),
            "torso_field.mlp.0.weight": torch.randn(3, 2, generator=g),
            "head_grid.density": torch.rand(4, 4, 4, generator=g),
            "head_grid.occupied": occupied, "torso_grid.occupied": ~occupied,
            "head_grid.updates": torch.tensor(seed + 1),
            "code_bank": torch.randn(5, 2, generator=g)}


def _default_subject_script():
    """scripts/train_default_subject.py as a module (scripts/ is not a package)."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "train_default_subject.py"
    spec = importlib.util.spec_from_file_location("train_default_subject", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mix_interpolates_fields_and_unites_occupancy():
    base, tuned = _state(0), _state(1)
    mixed = mix_state_dicts(base, tuned, 0.25)
    expected = 0.75 * base["head_field.mlp.0.weight"] + 0.25 * tuned["head_field.mlp.0.weight"]
    assert torch.allclose(mixed["head_field.mlp.0.weight"], expected)
    assert torch.equal(mixed["head_grid.occupied"], base["head_grid.occupied"] | tuned["head_grid.occupied"])
    assert torch.equal(mixed["head_grid.density"], torch.maximum(base["head_grid.density"], tuned["head_grid.density"]))
    assert torch.equal(mixed["code_bank"], base["code_bank"])          # not a field weight: the base's
    assert int(mixed["head_grid.updates"]) == 1


def test_alpha_zero_is_the_base_and_head_parts_keep_the_base_torso():
    base, tuned = _state(0), _state(1)
    same = mix_state_dicts(base, tuned, 0.0, parts="head")
    assert torch.equal(same["head_field.mlp.0.weight"], base["head_field.mlp.0.weight"])
    head = mix_state_dicts(base, tuned, 1.0, parts="head")
    assert torch.equal(head["head_field.mlp.0.weight"], tuned["head_field.mlp.0.weight"])
    assert torch.equal(head["torso_field.mlp.0.weight"], base["torso_field.mlp.0.weight"])
    assert torch.equal(head["torso_grid.occupied"], base["torso_grid.occupied"])


def test_bad_mix_requests_are_refused():
    base, tuned = _state(0), _state(1)
    with pytest.raises(ValueError, match="alpha"):
        mix_state_dicts(base, tuned, 1.5)
    with pytest.raises(ValueError, match="parts"):
        mix_state_dicts(base, tuned, 0.5, parts="mouth")
    tuned.pop("code_bank")
    with pytest.raises(ValueError, match="code_bank"):
        mix_state_dicts(base, tuned, 0.5)


def test_the_default_subject_script_ships_stage_1_with_the_tuned_head(tmp_path):
    """scripts/train_default_subject.py's last NeRF step: work/nerf (stage 2) becomes the head mix with stage 1,
    and its metadata stays stage 1's (config, steps) with a record of the mix."""
    import json

    from safetensors.torch import load_file, save_file
    module = _default_subject_script()
    stage1, stage2 = _state(0), _state(1)
    save_file(stage1, str(tmp_path / "nerf_stage1.safetensors"))
    save_file(stage2, str(tmp_path / "nerf.safetensors"))
    (tmp_path / "nerf_stage1.json").write_text(json.dumps({"step": 9345, "config": {"hidden": 64}}))
    (tmp_path / "nerf.json").write_text(json.dumps({"step": 3194, "train_seconds": 1080.0, "config": {"hidden": 64}}))
    record = module.mix_stage2(tmp_path, 1.0, "head")
    shipped = load_file(str(tmp_path / "nerf.safetensors"))
    assert torch.equal(shipped["head_field.mlp.0.weight"], stage2["head_field.mlp.0.weight"])
    assert torch.equal(shipped["torso_field.mlp.0.weight"], stage1["torso_field.mlp.0.weight"])
    meta = json.loads((tmp_path / "nerf.json").read_text())
    assert meta["step"] == 9345 and meta["mix"] == record and record["tuned"]["steps"] == 3194


def test_the_depth_stage_mixes_onto_stage_2_and_keeps_its_records(tmp_path):
    """Stage 3 (landmark-depth fine-tune): the shipped NeRF is the stage-2 mix with stage 3's head field, the
    metadata stays stage 2's (its own mix record included) with the depth mix recorded beside it; the stage's
    config is the depth loss on top of stage 2's recipe, annealed by steps (so a slow machine trains the same)."""
    import json

    from safetensors.torch import load_file, save_file
    module = _default_subject_script()
    stage2, stage3 = _state(2), _state(3)
    save_file(stage2, str(tmp_path / "nerf_stage2.safetensors"))
    save_file(stage3, str(tmp_path / "nerf.safetensors"))
    stage1_mix = {"alpha": 1.0, "parts": "head", "base": "stage 1", "tuned": {"steps": 3194}}
    (tmp_path / "nerf_stage2.json").write_text(json.dumps({"step": 9345, "mix": stage1_mix}))
    (tmp_path / "nerf.json").write_text(json.dumps({"step": 3000, "train_seconds": 700.0}))
    record = module.mix_stage2(tmp_path, 1.0, "head", base="stage2", key="depth_mix")
    shipped = load_file(str(tmp_path / "nerf.safetensors"))
    assert torch.equal(shipped["head_field.mlp.0.weight"], stage3["head_field.mlp.0.weight"])
    assert torch.equal(shipped["torso_field.mlp.0.weight"], stage2["torso_field.mlp.0.weight"])
    meta = json.loads((tmp_path / "nerf.json").read_text())
    assert meta["mix"] == stage1_mix and meta["depth_mix"] == record and record["base"] == "stage 2"
    cfg = module.depth_finetune_config(3000, 0.05, 1)
    assert cfg.landmark_depth_weight == 0.05 and cfg.steps == 3000 and cfg.minutes is None
    assert not cfg.anneal_by_time and cfg.rare_mouth_cap == 8.0


def test_the_default_script_trains_all_three_stages_within_the_hour():
    """Issue 12's bar: the script's defaults run stage 1, the SR, stage 2 and the depth stage in <= 60 CPU minutes at
    the rates measured on the shared 2-core machine; the session-7 chain (stage 2 on an 18-minute clock) would not."""
    module = _default_subject_script()
    args = module.build_parser().parse_args([])
    assert args.depth_steps == 3000 and args.rare_mouth_minutes > 0 and args.mix_parts == "head"
    assert module.training_minutes_bound(args) <= 60.0
    longer = module.build_parser().parse_args(["--rare-mouth-minutes", "18"])
    assert module.training_minutes_bound(longer) > 60.0
    no_depth = module.build_parser().parse_args(["--depth-steps", "0", "--rare-mouth-minutes", "18"])
    assert abs(module.training_minutes_bound(no_depth) - 50.1) < 0.05      # the session-6 chain: 28 + 4.1 + 18
