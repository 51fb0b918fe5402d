"""MIPenalty: its value, its clipped gradient, the floor, and that it trains its critic."""

from __future__ import annotations

import copy

import pytest
import torch

from midebias.penalty import MIPenalty, clip_to_reference


def _data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = torch.randint(0, 4, (n,), generator=g)
    z = torch.nn.functional.one_hot(c, 4).float() * 3 + torch.randn(n, 4, generator=g)
    return z, torch.nn.functional.one_hot(c, 4).float(), c


def test_clip_to_reference():
    g = torch.tensor([3.0, 4.0])
    torch.testing.assert_close(clip_to_reference(g, torch.tensor(1.0)), g / 5)
    torch.testing.assert_close(clip_to_reference(g, torch.tensor(10.0)), g)


def test_value_is_weighted_estimate_and_gradient_is_clipped():
    z0, c, _ = _data()
    pen = MIPenalty(
        4,
        4,
        weight=2.0,
        critic_steps=200,
        critic_lr=1e-2,
        floor=False,
        generator=torch.Generator().manual_seed(0),
    )
    pen.train_critic(z0, c)
    z = z0.clone().requires_grad_(True)
    task = 1e-5 * (z**2).sum()  # a tiny task gradient: the MI gradient must be cut to it
    term = pen(z, c, task_loss=task, train_critic=False)
    torch.testing.assert_close(term.detach(), 2.0 * pen.last_estimate)
    assert pen.last_estimate > 0.5  # the critic found the dependence
    (g,) = torch.autograd.grad(term, z)
    g_task_norm = (2e-5 * z0).norm()
    torch.testing.assert_close(g.norm(), 2.0 * g_task_norm, rtol=1e-4, atol=1e-6)


def test_floor_gives_no_gradient_for_a_negative_estimate():
    z0, c, _ = _data()
    pen = MIPenalty(4, 4, critic_steps=0, floor=True)
    with torch.no_grad():  # a critic that scores shuffled pairs higher: estimate < 0
        for p in pen.estimator.parameters():
            p.zero_()
    z = z0.clone().requires_grad_(True)
    term = pen(z, c)
    assert float(pen.last_estimate) <= 0
    assert float(term.detach()) == 0.0
    # Masked, not branched (no device sync): the gradient exists and is exactly zero.
    (g,) = torch.autograd.grad(term, z, allow_unused=True)
    assert g is None or torch.count_nonzero(g) == 0


def test_training_the_critic_touches_only_the_critic():
    z, c, y = _data()
    encoder = torch.nn.Linear(4, 4)
    pen = MIPenalty(4, 4, conditional=True, critic_steps=3)
    before_enc, before_t = copy.deepcopy(encoder), copy.deepcopy(pen.estimator)
    pen(encoder(z), c, y=y)
    assert any(
        not torch.equal(a, b)
        for a, b in zip(before_t.parameters(), pen.estimator.parameters(), strict=True)
    )
    assert all(
        torch.equal(a, b)
        for a, b in zip(before_enc.parameters(), encoder.parameters(), strict=True)
    )
    with pytest.raises(ValueError, match="needs the labels"):
        pen(encoder(z), c)


def test_bad_settings():
    with pytest.raises(ValueError, match="weight"):
        MIPenalty(4, 4, weight=-1)
    with pytest.raises(ValueError, match="shuffle-based"):
        MIPenalty(4, 4, estimator="club", conditional=True)
