"""Bias-balanced sampling weights (midebias.sampling)."""

import pytest
import torch

from midebias.sampling import balancing_weights


def _biased(n=2000, agree=0.9, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    other = torch.randint(0, k, (n,), generator=g)
    b = torch.where(torch.rand(n, generator=g) < agree, y, other)  # bias mostly equals y
    return torch.eye(k)[b], y, b


@pytest.mark.slow
def test_conflicting_samples_get_the_large_weights():
    c, y, b = _biased()
    w = balancing_weights(c, y, seed=0)
    assert w[b != y].mean() > 5 * w[b == y].mean()


def test_weighted_draws_make_c_and_y_nearly_independent():
    c, y, b = _biased()
    w = balancing_weights(c, y, seed=0)
    idx = torch.multinomial(w, 20000, replacement=True, generator=torch.Generator().manual_seed(1))
    agree_plain = (b == y).float().mean().item()  # ~0.92 (0.9 + 0.1 / 4)
    agree_balanced = (b[idx] == y[idx]).float().mean().item()  # independence: 1 / 4
    assert agree_plain > 0.9
    assert agree_balanced < 0.4


def test_same_seed_same_weights_and_caller_rng_untouched():
    c, y, _ = _biased(n=300)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    w1 = balancing_weights(c, y, seed=3, steps=50)
    after = torch.rand(1)
    assert torch.equal(before, after)
    assert torch.equal(w1, balancing_weights(c, y, seed=3, steps=50))


def test_min_prob_caps_the_weights():
    c, y, _ = _biased()
    assert balancing_weights(c, y, min_prob=0.1).max() <= 10.0 + 1e-4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"min_prob": 0.0}, "min_prob"),
        ({"c": torch.full((10, 2), float("nan"))}, "NaN"),
        ({"y": torch.zeros(9, dtype=torch.long)}, "y must be"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, match):
    args = {"c": torch.eye(2)[torch.arange(10) % 2], "y": torch.arange(10) % 2}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        balancing_weights(args.pop("c"), args.pop("y"), **args)
