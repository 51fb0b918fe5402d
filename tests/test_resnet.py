"""ResNet-18/50: shapes and z, initialisation from a checkpoint file (weights only)."""

from __future__ import annotations

import pytest
import torch

from midebias.models import make_model
from midebias.models.resnet import CheckpointError, ResNet


@pytest.mark.parametrize(("name", "z_dim"), [("resnet18", 512), ("resnet50", 2048)])
def test_forward_shapes_and_representation(name, z_dim):
    torch.manual_seed(0)
    model = make_model(name, 3).eval()
    x = torch.rand(4, 3, 32, 32)
    z = model.features(x)
    assert z.shape == (4, z_dim) and model.z_dim == z_dim
    assert model(x).shape == (4, 3)
    torch.testing.assert_close(model.head(z), model(x))


def test_parameter_count_matches_the_standard_resnet18():
    # 11,689,512 weights with a 1000-way ImageNet layer; here a 2-way head instead.
    model = ResNet(18, num_classes=2)
    assert sum(p.numel() for p in model.parameters()) == 11_689_512 - 513_000 + 1_026


def test_init_from_a_checkpoint_copies_the_trunk_and_skips_fc(tmp_path):
    torch.manual_seed(1)
    src = ResNet(18, num_classes=1000)
    state = {"module." + k: v for k, v in src.encoder.state_dict().items()}
    state["module.fc.weight"] = torch.zeros(1000, 512)  # an ImageNet classifier: ignored
    path = tmp_path / "r18.pt"
    torch.save({"state_dict": state}, path)
    torch.manual_seed(2)
    model = make_model("resnet18", 2, checkpoint=str(path))
    for k, v in src.encoder.state_dict().items():
        torch.testing.assert_close(model.encoder.state_dict()[k], v)
    assert model.head.out_features == 2


def test_unsafe_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must not run",))

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": Evil()}, path)
    with pytest.raises(CheckpointError, match="not loadable as plain weights"):
        make_model("resnet18", 2, checkpoint=str(path))


@pytest.mark.slow
def test_checkpoint_of_another_network_is_a_clear_error(tmp_path):
    path = tmp_path / "r50.pt"
    torch.save(ResNet(50).encoder.state_dict(), path)
    with pytest.raises(CheckpointError, match="shape|missing"):
        make_model("resnet18", 2, checkpoint=str(path))
    with pytest.raises(CheckpointError, match="no such file"):
        make_model("resnet18", 2, checkpoint=str(tmp_path / "absent.pt"))
