"""MIPenalty: its value, its clipped gradient, the floor, and that it trains its critic."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from midebias.penalty import MIPenalty, add_without_climbing, clip_to_reference


def _data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = torch.randint(0, 4, (n,), generator=g)
    z = torch.nn.functional.one_hot(c, 4).float() * 3 + torch.randn(n, 4, generator=g)
    return z, torch.nn.functional.one_hot(c, 4).float(), c


def test_clip_to_reference():
    g = torch.tensor([3.0, 4.0])
    torch.testing.assert_close(clip_to_reference(g, torch.tensor(1.0)), g / 5)
    torch.testing.assert_close(clip_to_reference(g, torch.tensor(10.0)), g)


@pytest.mark.slow
def test_value_is_weighted_estimate_and_gradient_is_clipped():
    z0, c, _ = _data()
    pen = MIPenalty(
        4,
        4,
        lambda_=2.0,
        critic_steps=200,
        critic_lr=1e-2,
        floor=False,
        generator=torch.Generator().manual_seed(0),
        gaussian=0.0,  # the critic's part alone (the default adds the Gaussian term)
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
    pen = MIPenalty(4, 4, critic_steps=0, floor=True, gaussian=0.0)
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


@pytest.mark.slow
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
    with pytest.raises(ValueError, match="lambda_"):
        MIPenalty(4, 4, lambda_=-1)
    with pytest.raises(ValueError, match="shuffle-based"):
        MIPenalty(4, 4, estimator="club", conditional=True)


def _snapshot(pen: MIPenalty) -> dict:
    return copy.deepcopy(
        {
            "state": pen.state_dict(),  # critic, running statistics, optimiser, recent z
            "started": pen._started,
            "recent": [tuple(t.clone() for t in r if t is not None) for r in pen.recent],
        }
    )


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _nan_at(t: torch.Tensor, value=float("nan")) -> torch.Tensor:
    t = t.clone()
    t[3, 1] = value
    return t


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("z_nan", "z holds NaN or inf"),
        ("z_inf", "z holds NaN or inf"),
        ("c_nan", "c holds NaN or inf"),
        ("short_c", "same length"),
        ("short_y", "same length"),
        ("z_float64", "must be float32, got torch.float64"),
        ("z_float16", "must be float32, got torch.float16"),
        ("z_wide", r"shape \(N, 4\), got \(256, 5\)"),
        ("c_narrow", r"shape \(N, 4\), got \(256, 3\)"),
    ],
)
@pytest.mark.parametrize("call", ["forward", "train_critic", "critic_step", "estimate"])
def test_bad_input_is_refused_and_leaves_the_state_untouched(case, message, call):
    z, c, y = _data()
    pen = MIPenalty(4, 4, buffer=2, critic_steps=2, conditional=True, normalize=True)
    pen(z.clone().requires_grad_(True), c, y=y)  # some state: statistics, optimiser, buffer
    before = _snapshot(pen)
    bad = {
        "z_nan": dict(z=_nan_at(z)),
        "z_inf": dict(z=_nan_at(z, float("inf"))),
        "c_nan": dict(c=_nan_at(c)),
        "short_c": dict(c=c[:-1]),
        "short_y": dict(y=y[:-1]),
        "z_float64": dict(z=z.double()),
        "z_float16": dict(z=z.half()),
        "z_wide": dict(z=torch.cat([z, z[:, :1]], 1)),
        "c_narrow": dict(c=c[:, :3]),
    }[case]
    args = {"z": z, "c": c, "y": y, **bad}
    if call == "forward":
        args["z"] = args["z"].clone().requires_grad_(True)
        fn = lambda: pen(args["z"], args["c"], y=args["y"])  # noqa: E731
    else:
        fn = lambda: getattr(pen, call)(args["z"], args["c"], args["y"])  # noqa: E731
    with pytest.raises(ValueError, match=message):
        fn()
    assert _same(_snapshot(pen), before)
    # Still usable: a clean batch gives a finite value.
    term = pen(z.clone().requires_grad_(True), c, y=y)
    assert torch.isfinite(term) and torch.isfinite(pen.last_estimate)


@pytest.mark.parametrize("weight", [float("nan"), float("inf")])
def test_weight_must_be_finite(weight):
    with pytest.raises(ValueError, match="lambda_ must be a finite number"):
        MIPenalty(4, 4, lambda_=weight)


def test_float_labels_wrong_width_stats_and_nan_weight_are_refused_without_state_change():
    p = MIPenalty(4, 2, conditional=True, buffer=2)
    z, c = torch.randn(8, 4), torch.randn(8, 2)
    p.train_critic(z, c, torch.arange(8) % 2)
    before = (len(p.recent), copy.deepcopy(p.z_mean))
    with pytest.raises(ValueError, match="integer class labels"):
        p.train_critic(z, c, torch.zeros(8))  # float y
    with pytest.raises(ValueError, match="shape"):
        p.update_stats(torch.ones(8, 1))
    assert (len(p.recent), p.z_mean.tolist()) == (before[0], before[1].tolist())
    with pytest.raises(ValueError, match="finite"):
        p.lambda_ = float("nan")
    assert p.lambda_ == 1.0


def _encoder_setup(lambda_=1.0, **kw):
    torch.manual_seed(0)
    enc = torch.nn.Linear(4, 4)
    head = torch.nn.Linear(4, 4)
    # The critic's part alone: the Gaussian term (on by default) has tests of its own.
    kw = {"critic_steps": 100, "critic_lr": 1e-2, "gaussian": 0.0, **kw}
    gen = torch.Generator().manual_seed(0)
    pen = MIPenalty(4, 4, lambda_=lambda_, generator=gen, params=enc.parameters(), lr=1e-2, **kw)
    return enc, head, pen


def test_step_descends_the_estimate_and_leaves_the_task_gradient():
    x, c, y = _data()
    enc, head, pen = _encoder_setup()
    pen.train_critic(enc(x), c)  # a critic that sees the dependence
    before = [p.detach().clone() for p in enc.parameters()]
    z = enc(x)
    ce = torch.nn.functional.cross_entropy(head(z), y)
    ce.backward(retain_graph=True)
    task = [p.grad.clone() for p in enc.parameters()]
    value = pen.step(z, c)
    assert value > 0.1
    for p, t in zip(enc.parameters(), task, strict=True):
        torch.testing.assert_close(p.grad, t)  # the caller's optimiser gets the task gradient
    assert any(not torch.equal(p, b) for p, b in zip(enc.parameters(), before, strict=True))
    with torch.no_grad():  # the same critic now reads less of c from the new z
        after = pen.estimate(enc(x), c)
    pen2 = copy.deepcopy(pen)
    with torch.no_grad():
        for p, b in zip(enc.parameters(), before, strict=True):
            p.copy_(b)
        assert pen2.estimate(enc(x), c) > after


def test_add_update_leaves_task_plus_lambda_times_the_clipped_mi_gradient_in_grad():
    x, c, y = _data()
    torch.manual_seed(0)
    enc, head = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
    gen = torch.Generator().manual_seed(0)
    pen = MIPenalty(
        4, 4, lambda_=2.0, generator=gen, params=enc.parameters(), lr=0.0, update="add",
        critic_steps=100, critic_lr=1e-2, gaussian=0.0,
    )  # fmt: skip
    assert pen.encoder_opt is None  # lr is not used: the caller's optimiser steps
    pen.train_critic(enc(x), c)
    before = [p.detach().clone() for p in enc.parameters()]
    z = enc(x)
    torch.nn.functional.cross_entropy(head(z), y).backward(retain_graph=True)
    task = [p.grad.clone() for p in enc.parameters()]
    state = gen.get_state()  # the estimate's shuffle: the same one in step
    g_mi = torch.autograd.grad(pen.estimate(z, c), list(enc.parameters()), retain_graph=True)
    gen.set_state(state)
    value = pen.step(z, c)
    assert value > 0.1
    for p, t, g, b in zip(enc.parameters(), task, g_mi, before, strict=True):
        assert torch.equal(p, b)  # no step of its own
        torch.testing.assert_close(p.grad, t + 2.0 * clip_to_reference(g, t.norm()))
        assert not torch.equal(p.grad, t)
    with pytest.raises(ValueError, match="update must be"):
        MIPenalty(4, 4, update="sgd")


def test_add_without_climbing_removes_only_the_uphill_part():
    t = torch.tensor([1.0, 0.0])
    out = add_without_climbing(t, torch.tensor([-3.0, 1.0]))  # t + m = (-2, 1): uphill
    torch.testing.assert_close(out, torch.tensor([0.0, 1.0]))  # <out, t> = 0, m's other part kept
    m = torch.tensor([-0.5, 2.0])  # t + m still goes downhill: exactly t + m
    assert torch.equal(add_without_climbing(t, m), t + m)
    zero = torch.zeros(2)  # no task gradient: nothing to climb
    assert torch.equal(add_without_climbing(zero, m), zero + m)


def test_no_uphill_step_never_climbs_the_task_loss():
    x, c, y = _data()

    def step(no_uphill):
        enc, head, pen = _encoder_setup(8.0, update="add", no_uphill=no_uphill)
        pen.train_critic(enc(x), c)  # a critic that reads c: its gradient opposes the CE's
        z = enc(x)
        torch.nn.functional.cross_entropy(head(z), y).backward(retain_graph=True)
        task = [p.grad.clone() for p in enc.parameters()]
        pen.step(z, c)
        return [float((p.grad * t).sum()) for p, t in zip(enc.parameters(), task, strict=True)]

    assert min(step(False)) < 0  # y = c here: at lambda_ 8 the plain sum climbs
    assert min(step(True)) >= -1e-6
    with pytest.raises(ValueError, match="no_uphill applies to update='add'"):
        MIPenalty(4, 4, no_uphill=True)


def test_critic_first_trains_the_critic_on_this_z_before_the_estimate_it_descends():
    x, c, y = _data()

    def setup(critic_first):
        torch.manual_seed(0)
        enc, head = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
        gen = torch.Generator().manual_seed(0)
        pen = MIPenalty(
            4, 4, generator=gen, params=enc.parameters(), update="add", critic_lr=1e-2,
            critic_first=critic_first, gaussian=0.0,
        )  # fmt: skip
        z = enc(x)
        torch.nn.functional.cross_entropy(head(z), y).backward(retain_graph=True)
        return enc, pen, z

    enc, pen, z = setup(True)
    value = pen.step(z, c)
    grads = [p.grad.clone() for p in enc.parameters()]
    # By hand: train T on this z first (the same draws), then estimate and step after.
    enc2, pen2, z2 = setup(False)
    task = [p.grad.clone() for p in enc2.parameters()]
    pen2.train_critic(z2, c)
    pen2.critic_steps = 0  # step trains no more
    assert pen2.step(z2, c) == value
    for p, g in zip(enc2.parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, g)
    for p, t in zip(enc2.parameters(), task, strict=True):
        assert not torch.equal(p.grad, t)  # the MI gradient was added
    # ... and not what the default order gives from the untrained critic.
    _, pen3, z3 = setup(False)
    assert pen3.step(z3, c) != value
    assert len(pen.recent) == 1  # T trained on this z once per call, not twice


def test_step_takes_no_encoder_step_at_a_floored_estimate_or_lambda_zero():
    x, c, y = _data()
    for lambda_, floor in ((1.0, True), (0.0, False)):
        enc, head, pen = _encoder_setup(lambda_, floor=floor, critic_steps=0)
        with torch.no_grad():  # a critic whose estimate is negative
            for p in pen.estimator.parameters():
                p.zero_()
        before = [p.detach().clone() for p in enc.parameters()]
        z = enc(x)
        torch.nn.functional.cross_entropy(head(z), y).backward(retain_graph=True)
        pen.step(z, c)
        for p, b in zip(enc.parameters(), before, strict=True):
            assert torch.equal(p, b)


def test_step_needs_params_and_the_task_gradient():
    x, c, _ = _data()
    with pytest.raises(ValueError, match="params="):
        MIPenalty(4, 4).step(x, c)
    with pytest.raises(ValueError, match="params is empty"):
        MIPenalty(4, 4, params=[])
    with pytest.raises(ValueError, match="lr must be"):
        MIPenalty(4, 4, params=torch.nn.Linear(2, 2).parameters(), lr=0.0)
    enc, _, pen = _encoder_setup(floor=False)
    with pytest.raises(ValueError, match="backward"):
        pen.step(enc(x), c)  # no task gradient in .grad to clip to


def test_lambda_sets_the_encoder_step_size_and_state_round_trips():
    enc, _, pen = _encoder_setup(lambda_=2.0)
    assert pen.encoder_opt.param_groups[0]["lr"] == pytest.approx(2e-2)
    pen.lambda_ = 0.5
    assert pen.encoder_opt.param_groups[0]["lr"] == pytest.approx(5e-3)
    x, c, y = _data()
    pen.train_critic(enc(x), c)
    z = enc(x)
    torch.nn.functional.cross_entropy(z, y).backward(retain_graph=True)
    pen.step(z, c)
    enc2, _, pen2 = _encoder_setup(lambda_=0.5)
    pen2.load_state_dict(pen.state_dict())
    s1, s2 = pen.encoder_opt.state_dict()["state"], pen2.encoder_opt.state_dict()["state"]
    assert s1.keys() == s2.keys() and s1
    for k in s1:
        torch.testing.assert_close(s1[k]["exp_avg"], s2[k]["exp_avg"])


def test_gaussian_mi_is_the_closed_form_of_correlated_gaussians_and_zero_without_dependence():
    import math

    from midebias.estimators.gaussian import gaussian_mi

    g = torch.Generator().manual_seed(0)
    n, rho = 20000, 0.8
    x = torch.randn(n, 1, generator=g)
    y = rho * x + math.sqrt(1 - rho**2) * torch.randn(n, 1, generator=g)
    assert abs(float(gaussian_mi(x, y, eps=0.0)) + 0.5 * math.log(1 - rho**2)) < 0.01
    labels = torch.randint(0, 3, (n,), generator=g)
    c = torch.nn.functional.one_hot(labels, 3).float()  # columns sum to 1: Scc singular
    z = torch.randn(n, 5, generator=g)
    assert abs(float(gaussian_mi(z, c))) < 0.005
    z[:, 0] += 2 * c[:, 1]  # one direction's mean moves with c: 1/2 log(1 + 4 * 2/9)
    assert abs(float(gaussian_mi(z, c)) - 0.5 * math.log(1 + 8 / 9)) < 0.01
    # Given the variable that carries c's link to z, nothing is left: I(z; c | y) = 0.
    y1 = torch.nn.functional.one_hot(labels, 3).float()
    assert abs(float(gaussian_mi(z, c, y1))) < 0.005
    with pytest.raises(ValueError, match="same length"):
        gaussian_mi(z, c[:10])
    with pytest.raises(ValueError, match="given must be"):
        gaussian_mi(z, c, y1[:10])


def test_gaussian_term_joins_the_task_gradient_unclipped_even_at_a_floored_critic():
    from midebias.estimators.gaussian import gaussian_mi

    x, c, y = _data()
    with pytest.raises(ValueError, match="gaussian must be"):
        MIPenalty(4, 4, gaussian=-1.0)
    assert MIPenalty(4, 4).gaussian == 1.0  # on by default
    for gaussian in (0.0, 2.0):
        enc, head, pen = _encoder_setup(critic_steps=0, gaussian=gaussian)
        with torch.no_grad():  # a critic whose estimate is negative: floored to nothing
            for p in pen.estimator.parameters():
                p.zero_()
        before = [p.detach().clone() for p in enc.parameters()]
        z = enc(x)
        torch.nn.functional.cross_entropy(head(z), y).backward(retain_graph=True)
        task = [p.grad.clone() for p in enc.parameters()]
        linear = torch.autograd.grad(gaussian_mi(z, c), list(enc.parameters()), retain_graph=True)
        pen.step(z, c)
        for p, b, t, g in zip(enc.parameters(), before, task, linear, strict=True):
            assert torch.equal(p, b)  # no MI step; the caller's optimiser steps
            torch.testing.assert_close(p.grad, t + gaussian * g)
    # Over several processes the term's gradients are averaged as the MI ones are: `reduce`
    # sees them (here it halves them, in place).
    enc.zero_grad()
    z = enc(x)
    torch.nn.functional.cross_entropy(head(z), y).backward(retain_graph=True)
    task = [p.grad.clone() for p in enc.parameters()]
    linear = torch.autograd.grad(gaussian_mi(z, c), list(enc.parameters()), retain_graph=True)
    seen = []

    def halve(grads):
        seen.append(len(grads))
        for g in grads:
            g.mul_(0.5)

    pen.step(z, c, reduce=halve)
    assert seen == [2]  # the floored critic gave no MI gradient: the term's list alone
    for p, t, g in zip(enc.parameters(), task, linear, strict=True):
        torch.testing.assert_close(p.grad, t + g)  # 2.0 x the gradient, halved


def test_gaussian_term_lowers_the_linear_dependence_it_descends():
    from midebias.estimators.gaussian import gaussian_mi

    x_c, c, _ = _data()  # 4 inputs that carry c
    x = torch.cat([x_c, torch.randn(len(x_c), 4, generator=torch.Generator().manual_seed(1))], 1)
    torch.manual_seed(0)
    enc = torch.nn.Linear(8, 4)  # can keep the 4 inputs free of c and drop the rest
    pen = MIPenalty(4, 4, critic_steps=0, gaussian=1.0, params=enc.parameters(), lr=1e-2)
    opt = torch.optim.Adam(enc.parameters(), lr=1e-2)
    with torch.no_grad():
        for p in pen.estimator.parameters():
            p.zero_()  # the critic floored: only the Gaussian term acts
        start = float(gaussian_mi(enc(x), c))
    for _ in range(200):
        opt.zero_grad()
        z = enc(x)
        (0.0 * z.sum()).backward(retain_graph=True)  # a zero task gradient in .grad
        pen.step(z, c)
        opt.step()
    with torch.no_grad():
        end = float(gaussian_mi(enc(x), c))
    assert start > 0.5 and end < 0.2 * start


def test_gaussian_term_adds_its_gradient_to_the_loss_term():
    from midebias.estimators.gaussian import gaussian_mi

    z0, c, _ = _data()
    pen = MIPenalty(4, 4, critic_steps=0, clip=False, gaussian=3.0)
    with torch.no_grad():
        for p in pen.estimator.parameters():
            p.zero_()  # estimate 0: floored, so the term is the Gaussian part alone
    z = z0.clone().requires_grad_(True)
    term = pen(z, c)
    z1 = z0.clone().requires_grad_(True)
    expected = 3.0 * gaussian_mi(z1, c)
    torch.testing.assert_close(term.detach(), expected.detach())
    torch.testing.assert_close(
        torch.autograd.grad(term, z)[0], torch.autograd.grad(expected, z1)[0]
    )


def test_gaussian_term_in_the_task_loss_gives_step_the_same_gradient_with_one_backward_fewer():
    from midebias.estimators.gaussian import gaussian_mi

    x, c, y = _data()
    x2, c2, y2 = _data(seed=1)
    _, _, off = _encoder_setup(gaussian=0.0)
    assert float(off.gaussian_term(x, c)) == 0.0
    results = []
    for in_loss in (False, True):
        enc, head, pen = _encoder_setup(critic_steps=5, gaussian=2.0, update="add", clip=False)
        pen.train_critic(enc(x2), c2)  # a critic that sees the dependence; a kept batch
        z = enc(x)
        ce = torch.nn.functional.cross_entropy(head(z), y)
        if in_loss:
            term = pen.gaussian_term(z, c)
            # the batch and the kept one (detached), as `step` computes it
            torch.testing.assert_close(
                term, 2.0 * gaussian_mi(torch.cat([z, enc(x2).detach()]), torch.cat([c, c2]))
            )
            ce = ce + term
        backwards = []
        hook = enc.weight.register_hook(lambda g, seen=backwards: seen.append(1))
        ce.backward(retain_graph=True)
        pen.step(z, c, gaussian_in_loss=in_loss)
        hook.remove()
        results.append(([p.grad.clone() for p in enc.parameters()], len(backwards)))
    (separate, n_separate), (folded, n_folded) = results
    assert (n_separate, n_folded) == (3, 2)  # task, term, MI: the term joins the task's
    for a, b in zip(separate, folded, strict=True):
        assert a.abs().max() > 0
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="must have shape"):
        pen.gaussian_term(x[:, :3], c)


def test_gaussian_term_warns_once_when_the_kept_samples_are_too_few_for_z_and_c():
    pen = MIPenalty(8, 4, buffer=1, gaussian=1.0, critic_steps=1)
    z, c = torch.randn(60, 8), torch.nn.functional.one_hot(torch.arange(60) % 4, 4).float()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pen.gaussian_term(z, c)  # nothing kept yet: the buffer is not full
        pen.train_critic(z, c)
        pen.gaussian_term(z, c)  # 120 samples: no fewer than 8 x (8 + 4)
    pen = MIPenalty(8, 4, buffer=1, gaussian=1.0, critic_steps=1)
    pen.train_critic(z[:20], c[:20])
    with pytest.warns(UserWarning, match="sees 80 samples"):
        pen.gaussian_term(z, c)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pen.gaussian_term(z, c)  # once per penalty
