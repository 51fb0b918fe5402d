"""The networks: digit networks for the image benchmarks, an MLP for feature vectors.
Each exposes z = encoder(x)."""

from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    """encoder: x -> z, head: z -> logits. Methods reach z through `features`."""

    z_dim: int
    num_classes: int

    def __init__(self, encoder: nn.Module, head: nn.Module, z_dim: int, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.z_dim = z_dim
        self.num_classes = num_classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def has_batchnorm(model: nn.Module) -> bool:
    """Whether `model` has BatchNorm layers (their statistics depend on the batch)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


class PaperDigitNet(Classifier):
    """The digit network of Ragonesi et al. (their code), for 28x28 inputs.

    conv 5x5 64 (no padding) ReLU maxpool2 -> conv 5x5 64 ReLU maxpool2 -> FC 512 ReLU ->
    FC 64 ReLU (= z) -> linear num_classes.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, z_dim: int = 64):
        encoder = nn.Sequential(
            nn.Conv2d(in_channels, 64, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 512),
            nn.ReLU(),
            nn.Linear(512, z_dim),
            nn.ReLU(),
        )
        super().__init__(encoder, nn.Linear(z_dim, num_classes), z_dim, num_classes)


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 7, padding=3), nn.BatchNorm2d(cout), nn.ReLU()]


class SimpleConvNet(Classifier):
    """ReBias's SimpleConvNet (Bahng et al. 2020): four 7x7 conv layers (16, 32, 64, 128),
    BatchNorm + ReLU, global average pooling (= z, 128-d), linear num_classes."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10):
        layers: list[nn.Module] = []
        for cin, cout in [(in_channels, 16), (16, 32), (32, 64), (64, 128)]:
            layers += _conv_bn_relu(cin, cout)
        encoder = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        super().__init__(encoder, nn.Linear(128, num_classes), 128, num_classes)


class TabularMLP(Classifier):
    """For feature vectors: encoder Linear-ReLU-Linear (z, no activation), head
    Linear-ReLU-Linear (the network of the scikit-learn estimator and the tabular runs)."""

    def __init__(self, in_features: int, num_classes: int = 2, z_dim: int = 8, hidden: int = 64):
        encoder = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, z_dim))
        head = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
        super().__init__(encoder, head, z_dim, num_classes)


def _resnet(depth: int):
    def build(in_channels: int = 3, num_classes: int = 2, checkpoint=None):
        from midebias.models.resnet import ResNet

        return ResNet(depth, in_channels, num_classes, checkpoint)

    return build


MODELS = {
    "paper-digits": PaperDigitNet,
    "simple-conv": SimpleConvNet,
    "mlp": TabularMLP,
    "resnet18": _resnet(18),
    "resnet50": _resnet(50),
}


def make_model(name: str, num_classes: int = 10, *, in_channels: int = 3, **kw) -> Classifier:
    """Build a registered network by name (`in_features` for "mlp", `in_channels` for the
    image networks, and `checkpoint`, a file of trunk weights, for the ResNets)."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None
    if cls is TabularMLP:
        return cls(num_classes=num_classes, **kw)
    return cls(in_channels=in_channels, num_classes=num_classes, **kw)
