"""A wider / gated head NeRF started from a smaller checkpoint renders exactly what the checkpoint did,
and then trains its new parts (backend/render/model_growth.py, ConditionedField.gate)."""
import pytest
import torch

from backend.checkpoints import CheckpointError, save_checkpoint
from backend.render.model import MODEL_KIND, MODEL_VERSION, SubjectModelConfig, SubjectNeRF
from backend.render.model_growth import grow_state_into, load_grown_checkpoint


def _trained_looking(config: SubjectModelConfig, seed: int = 0) -> SubjectNeRF:
    """A model whose weights are all non-trivial (every parameter moved off its initialisation)."""
    torch.manual_seed(seed)
    model = SubjectNeRF(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _render(model: SubjectNeRF, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    rays = 64
    origins = torch.zeros(rays, 3)
    dirs = torch.nn.functional.normalize(torch.randn(rays, 3, generator=g) * 0.1 + torch.tensor([0.0, 0.0, 1.0]), dim=-1)
    head_from_world = torch.cat([torch.eye(3), torch.tensor([[0.0], [0.0], [-10.0]])], 1).expand(rays, 3, 4)
    code = torch.randn(rays, 16, generator=g)
    pose = torch.randn(rays, 6, generator=g) * 0.1
    model.eval()
    with torch.no_grad():
        return model(origins, dirs, head_from_world, code, pose, skip_empty=False)


@pytest.mark.parametrize("grown", [dict(head_hidden=128), dict(head_condition_gate=True),
                                   dict(head_hidden=96, head_condition_gate=True)])
def test_a_grown_head_renders_exactly_what_its_checkpoint_did(grown):
    small = _trained_looking(SubjectModelConfig())
    big = SubjectNeRF(SubjectModelConfig(**grown))
    changed = grow_state_into(big, small.state_dict())
    assert changed and all(name.startswith("head_field.") for name in changed)
    before, after = _render(small), _render(big)
    assert before["alpha"].max() > 0.01, "the test rays must meet the head"
    for key in ("rgb", "alpha"):
        assert torch.allclose(before[key], after[key], atol=1e-6), key


def test_the_new_parts_learn_and_then_change_the_picture():
    small = _trained_looking(SubjectModelConfig())
    big = SubjectNeRF(SubjectModelConfig(head_hidden=96, head_condition_gate=True))
    grow_state_into(big, small.state_dict())
    big.train()
    g = torch.Generator().manual_seed(3)
    x, code = torch.rand(256, 3, generator=g), torch.randn(256, 16, generator=g)
    sigma, rgb = big.head_field(x, big.head_field.embed_condition(code))
    (sigma.mean() + rgb.mean()).backward()
    gate, last = big.head_field.gate.weight.grad, big.head_field.mlp[4].weight.grad
    assert gate.abs().sum() > 0, "a zero-initialised gate must still receive gradient"
    assert last[:, 64:].abs().sum() > 0, "the new hidden units' zero output weights must receive gradient"
    with torch.no_grad():
        big.head_field.gate.weight.add_(0.5)
    assert not torch.allclose(_render(small)["rgb"], _render(big)["rgb"], atol=1e-4)


def test_growths_that_would_change_the_picture_are_refused(tmp_path):
    small = _trained_looking(SubjectModelConfig())
    with pytest.raises(ValueError, match="narrower|does not grow"):
        grow_state_into(SubjectNeRF(SubjectModelConfig(head_hidden=32)), small.state_dict())
    table = SubjectModelConfig()
    table.head_grid.log2_table_size = 16      # a bigger hash table re-hashes every position
    with pytest.raises(ValueError, match="head_field.encoding"):
        grow_state_into(SubjectNeRF(table), small.state_dict())
    stem = tmp_path / "nerf"
    save_checkpoint(stem, SubjectNeRF(SubjectModelConfig(head_condition_gate=True)), kind=MODEL_KIND,
                    version=MODEL_VERSION, config=SubjectModelConfig(head_condition_gate=True))
    with pytest.raises(CheckpointError, match="lacks: head_field.gate"):
        load_grown_checkpoint(stem, SubjectNeRF(SubjectModelConfig()), kind=MODEL_KIND, version=MODEL_VERSION)


def test_a_checkpoint_that_fits_loads_unchanged(tmp_path):
    model = _trained_looking(SubjectModelConfig(head_condition_gate=True))
    stem = tmp_path / "nerf"
    save_checkpoint(stem, model, kind=MODEL_KIND, version=MODEL_VERSION, config=model.config)
    fresh = SubjectNeRF(SubjectModelConfig(head_condition_gate=True))
    assert load_grown_checkpoint(stem, fresh, kind=MODEL_KIND, version=MODEL_VERSION) == []
    assert torch.equal(_render(model)["rgb"], _render(fresh)["rgb"])
