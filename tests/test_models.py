"""Networks: output shapes, the representation z, the paper's layer sizes."""

from __future__ import annotations

import pytest
import torch

from midebias.models import PaperDigitNet, SimpleConvNet, make_model


@pytest.mark.parametrize(("name", "z_dim"), [("paper-digits", 64), ("simple-conv", 128)])
def test_output_and_representation_shapes(name, z_dim):
    model = make_model(name)
    x = torch.rand(5, 3, 28, 28)
    assert model(x).shape == (5, 10)
    z = model.features(x)
    assert z.shape == (5, z_dim) and model.z_dim == z_dim
    torch.testing.assert_close(model.head(z), model(x))


def test_paper_network_layers_match_the_protocol():
    m = PaperDigitNet()
    convs = [l for l in m.encoder if isinstance(l, torch.nn.Conv2d)]
    fcs = [l for l in m.encoder if isinstance(l, torch.nn.Linear)]
    assert [(c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (64, (5, 5), (0, 0)),
        (64, (5, 5), (0, 0)),
    ]
    assert [(f.in_features, f.out_features) for f in fcs] == [(1024, 512), (512, 64)]
    assert (m.features(torch.rand(4, 3, 28, 28)) >= 0).all()  # z follows a ReLU


def test_simple_conv_net_layers_match_rebias():
    m = SimpleConvNet()
    convs = [l for l in m.encoder if isinstance(l, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128]
    assert all(c.kernel_size == (7, 7) and c.padding == (3, 3) for c in convs)
    assert sum(isinstance(l, torch.nn.BatchNorm2d) for l in m.encoder) == 4


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        make_model("resnet")


def test_tabular_mlp_shapes_and_registry():
    model = make_model("mlp", 3, in_features=7, z_dim=4, hidden=16)
    x = torch.rand(6, 7)
    assert model(x).shape == (6, 3) and model.num_classes == 3
    z = model.features(x)
    assert z.shape == (6, 4) and model.z_dim == 4
    torch.testing.assert_close(model.head(z), model(x))
