"""Tests of the MI estimators: accuracy against known MI, gradients, training, numerics,
reproducibility and input errors of `estimate_mi`.

Tolerances were set from measurements (torch 2.13 CPU, 1-2 threads). For the accuracy
cases below (n = 2000 samples, half held out; steps=1000, patience=5 to keep the file
fast) four data/estimator seeds gave, over dv/mine/nwj/infonce:
  MI 0.5 (d=2):             0.443 .. 0.500     -> tolerance +-0.12
  MI 2.0 (d=3):             1.725 .. 1.946     -> accepted range [1.6, 2.2]
  mixture MI 0.67 (k=4, d=3): 0.624 .. 0.688   -> tolerance +-0.12
  independent (n=3000):     -0.018 .. 0.006 (seeds 1-4; n=2000 gave down to -0.098)
                                               -> |estimate| < 0.06
CLUB (an upper bound, loose for Gaussians) came out within 20% of the value it takes with
the exact q(c | z): d rho^2 / (1 - rho^2) for correlated Gaussians.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from midebias.estimators import (
    ESTIMATORS,
    CLUBEstimator,
    MIEstimator,
    correlated_gaussians,
    estimate_mi,
    gaussian_mixture_categorical,
    make_estimator,
    rho_for_mi,
)
from midebias.estimators.base import within_group_pairs
from midebias.estimators.synthetic import mixture_means, mixture_true_mi

LOWER = ["dv", "mine", "nwj", "infonce"]
FAST = {"steps": 1000, "patience": 5}  # estimate_mi settings for the accuracy tests


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny networks: one torch thread is faster, and far faster on a busy machine."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


# ----------------------------------------------------------------------------- synthetic
def test_correlated_gaussians_true_mi_and_rho_round_trip():
    for d, mi in [(1, 0.1), (3, 2.0), (20, 10.0)]:
        rho = rho_for_mi(mi, d)
        x, y, true = correlated_gaussians(20_000, d, rho, np.random.default_rng(0))
        assert true == pytest.approx(mi)
        assert x.shape == y.shape == (20_000, d)
        # the empirical per-coordinate correlation matches rho
        emp = np.mean([np.corrcoef(x[:, k], y[:, k])[0, 1] for k in range(d)])
        assert emp == pytest.approx(rho, abs=0.02)


def test_mixture_true_mi_limits_and_monte_carlo_accuracy():
    assert mixture_true_mi(4, 3, 0.0) == pytest.approx(0.0, abs=0.01)
    far = gaussian_mixture_categorical(10, 4, 3, 30.0, 0)[2]
    assert far == pytest.approx(math.log(4), abs=1e-3)  # classes fully separable
    mid = gaussian_mixture_categorical(10, 4, 3, 2.0, 0)[2]
    assert 0.3 < mid < math.log(4)
    # the fixed MC sample is large enough: a 4x larger one agrees to 0.01 nats
    assert mixture_true_mi(4, 3, 2.0, mc_samples=800_000) == pytest.approx(mid, abs=0.01)
    means = mixture_means(5, 2, 1.5)  # k-gon: neighbours 1.5 apart
    assert np.linalg.norm(means[0] - means[1]) == pytest.approx(1.5)


# ------------------------------------------------------------------------ accuracy (audit)
def _cases() -> dict[str, tuple]:
    return {
        "independent": correlated_gaussians(3000, 2, 0.0, 11),
        "small": correlated_gaussians(2000, 2, rho_for_mi(0.5, 2), 12),
        "moderate": correlated_gaussians(2000, 3, rho_for_mi(2.0, 3), 13),
        "mixture": gaussian_mixture_categorical(2000, 4, 3, 2.0, 14),
    }


@pytest.fixture(scope="module")
def estimates() -> dict[tuple[str, str], tuple[float, float]]:
    """(estimator, case) -> (estimate, true MI); each estimator trained once per case."""
    out = {}
    for case, (x, y, true) in _cases().items():
        for name in ESTIMATORS:
            out[name, case] = (estimate_mi(x, y, estimator=name, seed=1, **FAST), true)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", LOWER)
def test_lower_bounds_recover_known_mi(estimates, name):
    est, true = estimates[name, "small"]
    assert abs(est - true) < 0.12, f"{name}: {est:.3f} vs true {true:.3f}"
    est, true = estimates[name, "moderate"]
    assert 1.6 < est < 2.2, f"{name}: {est:.3f} vs true {true:.3f}"
    est, true = estimates[name, "mixture"]
    assert abs(est - true) < 0.12, f"{name}: {est:.3f} vs true {true:.3f}"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_independent_data_gives_about_zero(estimates, name):
    est, _ = estimates[name, "independent"]
    assert abs(est) < 0.06, f"{name}: {est:.3f} on independent data"


def _club_exact_q_mixture(k: int, d: int, separation: float) -> float:
    """CLUB's value with q = p(c | z) for the mixture, by Monte Carlo."""
    rng = np.random.default_rng(0)
    means = mixture_means(k, d, separation)
    c = rng.integers(0, k, 200_000)
    z = means[c] + rng.standard_normal((len(c), d))
    logits = -0.5 * ((z[:, None, :] - means[None]) ** 2).sum(-1)
    log_post = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    return float(log_post[np.arange(len(c)), c].mean() - log_post.mean())


@pytest.mark.slow
def test_club_is_an_upper_bound_close_to_its_exact_q_value(estimates):
    assert CLUBEstimator.is_upper_bound and not any(ESTIMATORS[n].is_upper_bound for n in LOWER)
    for case, d in [("small", 2), ("moderate", 3)]:
        est, true = estimates["club", case]
        rho2 = -math.expm1(-2 * true / d)
        exact_q = d * rho2 / (1 - rho2)  # CLUB with the true Gaussian conditional
        assert est > true - 0.05, f"{case}: CLUB {est:.3f} below true MI {true:.3f}"
        assert est == pytest.approx(exact_q, rel=0.2), f"{case}: {est:.3f} vs {exact_q:.3f}"
    est, true = estimates["club", "mixture"]
    assert est > true - 0.05
    assert est == pytest.approx(_club_exact_q_mixture(4, 3, 2.0), rel=0.2)


# -------------------------------------------------------------------- estimator modules
def _batch(n: int = 256, d: int = 2, mi: float = 1.0, seed: int = 0):
    x, y, _ = correlated_gaussians(n, d, rho_for_mi(mi, d), seed)
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)


def _build(name: str, categorical: bool, seed: int = 0) -> MIEstimator:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    if categorical:
        return make_estimator(name, 2, 4, c_categories=4, hidden=32, generator=gen)
    return make_estimator(name, 2, 2, hidden=32, generator=gen)


@pytest.mark.parametrize("categorical", [False, True])
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_forward_is_a_differentiable_scalar_in_z(name, categorical):
    est = _build(name, categorical)
    z, y = _batch(64)
    c = (y[:, 0] > 0).long() + 2 * (y[:, 1] > 0).long() if categorical else y
    z.requires_grad_(True)
    value = est(z, c)
    assert value.shape == ()
    value.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_loss_trains_the_estimator(name):
    est = _build(name, categorical=False)
    z, c = _batch(512, mi=1.0, seed=1)
    opt = torch.optim.Adam(est.parameters(), lr=3e-3)
    with torch.no_grad():
        before_value, before_loss = float(est(z, c)), float(est.loss(z, c))
    for step in range(150):
        idx = torch.arange(128) + 128 * (step % 4)
        loss = est.loss(z[idx], c[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after_value, after_loss = float(est(z, c)), float(est.loss(z, c))
    assert after_loss < before_loss - 0.3
    if name == "club":
        # q fitted: the bound is near its exact-q value 2 rho^2 / (1 - rho^2) = 3.44, not ~0
        assert after_value > 1.0
    else:
        assert after_value > before_value + 0.5 and after_value > 0.6  # true MI is 1.0


def test_mine_corrected_gradient_equals_dv_gradient_when_ema_is_the_batch_mean():
    z, c = _batch(128)
    dv, mine = _build("dv", False), _build("mine", False, seed=1)
    mine.critic.load_state_dict(dv.critic.state_dict())
    dv.generator.manual_seed(5)
    mine.generator.manual_seed(5)
    # First call: the EMA starts at this batch's mean, so MINE's gradient is DV's.
    dv.loss(z, c).backward()
    mine_loss = mine.loss(z, c)
    mine_loss.backward()
    for p, q in zip(dv.critic.parameters(), mine.critic.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)
    dv.generator.manual_seed(5)
    assert float(mine_loss.detach()) == pytest.approx(-float(dv(z, c).detach()), abs=1e-5)
    # Later calls blend in the history: the gradient now differs from DV's.
    ema = float(mine.log_ema)
    dv.zero_grad()
    mine.zero_grad()
    z2, c2 = _batch(128, seed=3)
    dv.loss(z2, 3 * c2).backward()
    mine.loss(z2, 3 * c2).backward()
    assert float(mine.log_ema) != ema
    assert not torch.allclose(dv.critic.net[0].weight.grad, mine.critic.net[0].weight.grad)
    # forward and eval-mode loss leave the EMA alone; a stale EMA gives no inf or NaN
    ema = float(mine.log_ema)
    mine(z, c)
    mine.eval()
    mine.loss(z, c)
    assert float(mine.log_ema) == ema
    mine.log_ema.fill_(-500.0)
    assert torch.isfinite(mine.loss(z, c))


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_no_nan_for_huge_scores(name):
    est = _build(name, categorical=False)
    with torch.no_grad():
        for p in est.parameters():
            p.mul_(40.0)  # scores of order 1e4 and more
    z, c = _batch(64)
    z.requires_grad_(True)
    for value in (est(z, c), est.loss(z, c)):
        assert not torch.isnan(value)
        (grad,) = torch.autograd.grad(value, z)
        assert not torch.isnan(grad).any()


def test_infonce_never_exceeds_log_batch_size():
    est = _build("infonce", categorical=False)
    z, _ = _batch(32)
    with torch.no_grad():
        for p in est.parameters():
            p.mul_(5.0)
        assert float(est(z, z.clone())) <= math.log(32) + 1e-5


def test_club_closed_form_negative_term_matches_all_pairs():
    z, c = _batch(50)
    est = _build("club", categorical=False)
    mu, logvar = est._gaussian(z)
    with torch.no_grad():
        # log q(c_j | z_i) for all i, j, brute force (constants cancel in the difference)
        ll = -0.5 * (((c[None] - mu[:, None]) ** 2) * torch.exp(-logvar[:, None]) + logvar[:, None])
        brute = ll.sum(-1).diagonal().mean() - ll.sum(-1).mean()
        torch.testing.assert_close(est(z, c), brute)
        cat = _build("club", categorical=True)
        labels = torch.arange(50) % 4
        log_q = torch.log_softmax(cat.logits(z), dim=1)
        brute = log_q[torch.arange(50), labels].mean() - log_q[:, labels].mean()
        torch.testing.assert_close(cat(z, labels), brute)


def test_generator_makes_shuffles_reproducible_and_categorical_matches_one_hot():
    z, y = _batch(64)
    labels = (y[:, 0] > 0).long() + 2 * (y[:, 1] > 0).long()
    cat = _build("dv", categorical=True)
    torch.manual_seed(0)
    onehot = make_estimator("dv", 2, 4, hidden=32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cat.generator.manual_seed(9)
        a = float(cat(z, labels))
        cat.generator.manual_seed(9)
        assert float(cat(z, labels)) == a
        onehot.generator.manual_seed(9)
        assert float(onehot(z, torch.nn.functional.one_hot(labels, 4).float())) == a
        assert float(cat(z, labels)) != a  # the generator moved on: a new shuffle


def test_conditioned_on_pairs_within_groups():
    g = torch.tensor([0, 1, 0, 2, 1, 0, 1, 3, 3])
    partner = within_group_pairs(g, torch.randperm(9, generator=torch.Generator().manual_seed(0)))
    assert (g[partner] == g).all() and sorted(partner.tolist()) == list(range(9))
    z, c = _batch(64)
    est = _build("dv", categorical=False)
    groups = (c[:, 0] > 0).long()
    with est.conditioned_on(groups):
        assert torch.isfinite(est(z, c))
    assert est._groups is None
    with pytest.raises(ValueError, match="cannot be conditioned"):
        with _build("infonce", False).conditioned_on(groups):
            pass


def test_make_estimator_and_module_input_errors():
    with pytest.raises(ValueError, match=r"known estimators: \['club', 'dv'"):
        make_estimator("mien", 2, 2)
    with pytest.raises(ValueError, match="must equal c_categories"):
        make_estimator("dv", 2, 3, c_categories=4)
    est = _build("dv", categorical=True)
    z, _ = _batch(8)
    with pytest.raises(ValueError, match="integer class indices"):
        est(z, torch.zeros(8, 4))
    with pytest.raises(ValueError, match=r"lie in \[0, 4\)"):
        est(z, torch.full((8,), 4))
    with pytest.raises(ValueError, match=r"z must have shape \(N, 2\)"):
        est(torch.zeros(8, 3), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="differ in length"):
        est(z, torch.zeros(7, dtype=torch.long))


# ---------------------------------------------------------------------- estimate_mi API
def test_estimate_mi_input_errors_are_clear():
    x, y, _ = correlated_gaussians(100, 2, 0.5, 0)
    with pytest.raises(ValueError, match="same number of samples, got 100 and 99"):
        estimate_mi(x, y[:99])
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="x contains 1 NaN or infinite"):
        estimate_mi(bad, y)
    with pytest.raises(ValueError, match="y contains 2 NaN or infinite"):
        estimate_mi(x, np.where(np.arange(100)[:, None] == 5, np.inf, y))
    with pytest.raises(ValueError, match="too few samples: got 12"):
        estimate_mi(x[:12], y[:12])
    with pytest.raises(ValueError, match=r"unknown estimator 'foo'; known estimators: \["):
        estimate_mi(x, y, estimator="foo")
    with pytest.raises(ValueError, match="1-D or 2-D"):
        estimate_mi(x[:, :, None], y)


def test_estimate_mi_is_deterministic_and_leaves_global_rng_alone():
    x, y, _ = correlated_gaussians(400, 2, 0.6, 0)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    kw = {"steps": 60, "eval_every": 20}
    a = estimate_mi(x, y, seed=3, **kw)
    assert torch.equal(torch.get_rng_state(), state)
    assert estimate_mi(torch.as_tensor(x), torch.as_tensor(y), seed=3, **kw) == a
    assert estimate_mi(x, y, seed=4, **kw) != a


def test_estimate_mi_categorical_detection():
    z, c, _ = gaussian_mixture_categorical(400, 3, 2, 3.0, 0)
    kw = {"steps": 60, "eval_every": 20}
    labels = np.array(["a", "b", "c"])[c]  # not numeric: rejected with a clear message
    with pytest.raises(ValueError, match="numeric"):
        estimate_mi(z, labels, **kw)
    # integer labels with gaps are re-indexed; the same as 0..K-1
    assert estimate_mi(z, 10 * c + 5, **kw) == estimate_mi(z, c, **kw)
    assert estimate_mi(z, np.zeros(400, dtype=int), **kw) == 0.0  # constant: no information
    # forcing continuous treatment changes the model (one column instead of one-hot)
    assert estimate_mi(z, c, categorical=False, **kw) != estimate_mi(z, c, **kw)
