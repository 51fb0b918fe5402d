"""ResNet-18 and ResNet-50 (He et al. 2016) in plain PyTorch, for photographs.

z is the 512-d (ResNet-18) or 2048-d (ResNet-50) output of the global average pool; the
head is one linear layer. The trunk's parameter names follow the usual ImageNet layout
(conv1, bn1, layer1.0.conv1, ..., fc), so a checkpoint saved from such a network loads with
`load_backbone` (the classifier layer fc is left out: the task has its own classes).
Inputs are images in [0, 1]; the network normalises them with the ImageNet channel mean and
standard deviation (fixed buffers, not saved), as ImageNet checkpoints expect.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from midebias.models.digits import Classifier

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)  # stride here (v1.5)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class ResNetTrunk(nn.Module):
    """The ResNet trunk: stem, four stages, global average pool -> (N, z_dim)."""

    def __init__(self, block: type[nn.Module], layers: list[int], in_channels: int = 3):
        super().__init__()
        mean = torch.tensor(IMAGENET_MEAN if in_channels == 3 else [0.5] * in_channels)
        std = torch.tensor(IMAGENET_STD if in_channels == 3 else [0.25] * in_channels)
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, -1, 1, 1), persistent=False)
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, width, 2 if (j == 0 and i > 0) else 1))
                cin = width * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.out_dim = cin
        self.pool = nn.AdaptiveAvgPool2d(1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.pool(x), 1)


class ResNet(Classifier):
    """A ResNet classifier: z = the trunk's pooled features, head = linear num_classes.
    `checkpoint`: a file of trunk weights to start from (see `load_backbone`)."""

    def __init__(
        self,
        depth: int = 18,
        in_channels: int = 3,
        num_classes: int = 2,
        checkpoint: str | Path | None = None,
    ):
        archs = {18: (BasicBlock, [2, 2, 2, 2]), 50: (Bottleneck, [3, 4, 6, 3])}
        if depth not in archs:
            raise ValueError(f"ResNet depth must be 18 or 50, got {depth}")
        trunk = ResNetTrunk(*archs[depth], in_channels=in_channels)
        super().__init__(trunk, nn.Linear(trunk.out_dim, num_classes), trunk.out_dim, num_classes)
        if checkpoint is not None:
            load_backbone(trunk, checkpoint)


def resnet18(in_channels: int = 3, num_classes: int = 2, checkpoint=None) -> ResNet:
    return ResNet(18, in_channels, num_classes, checkpoint)


def resnet50(in_channels: int = 3, num_classes: int = 2, checkpoint=None) -> ResNet:
    return ResNet(50, in_channels, num_classes, checkpoint)


class CheckpointError(ValueError):
    """An initialisation checkpoint cannot be used; the message names the file and why."""


def load_backbone(trunk: ResNetTrunk, path: str | Path) -> None:
    """Copy the trunk weights of the checkpoint file `path` into `trunk`.

    The file is read with ``torch.load(weights_only=True)``: tensors and plain containers
    only, so a file that would run code when unpickled is refused. Accepted: a state dict,
    or a dict holding one under ``state_dict`` or ``model``; key prefixes ``module.``,
    ``encoder.``, ``backbone.`` are dropped and the classifier layer (``fc.*``, ``head.*``)
    is ignored. Every trunk parameter must be present with its shape.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"--init-checkpoint {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"--init-checkpoint {path}: not loadable as plain weights (refused or corrupt: "
            f"{first[:200]})"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping):
        raise CheckpointError(f"--init-checkpoint {path}: holds no state dict")
    weights = {}
    for k, v in state.items():
        for prefix in ("module.", "encoder.", "backbone."):
            k = k.removeprefix(prefix)
        if not k.startswith(("fc.", "head.")) and torch.is_tensor(v):
            weights[k] = v
    own = trunk.state_dict()
    missing = sorted(set(own) - set(weights))
    if missing:
        raise CheckpointError(
            f"--init-checkpoint {path}: {len(missing)} trunk weights missing (first: "
            f"{missing[0]}); is it a ResNet of the same depth?"
        )
    wrong = [k for k in own if weights[k].shape != own[k].shape]
    if wrong:
        raise CheckpointError(
            f"--init-checkpoint {path}: {wrong[0]} has shape {tuple(weights[wrong[0]].shape)}, "
            f"the network needs {tuple(own[wrong[0]].shape)}"
        )
    trunk.load_state_dict({k: weights[k] for k in own})
