"""Each method's step changes what it should and leaves the rest alone."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from midebias.methods import METHODS, Batch, get_method
from midebias.models import PaperDigitNet


def _batch(n=32, c_dim=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    # The paper's code: three one-hot groups of 8 (quantised R, G, B).
    code = torch.zeros(n, 3, 8)
    code[
        torch.arange(n)[:, None], torch.arange(3)[None, :], torch.randint(0, 8, (n, 3), generator=g)
    ] = 1
    return Batch(x=x, y=y, c=code.reshape(n, c_dim), b=y.clone())


def _make(name, settings=None, seed=0):
    torch.manual_seed(seed)
    model = PaperDigitNet()
    method = get_method(name)(
        model,
        lr=1e-3,
        c_dim=24,
        c_groups=[8, 8, 8],
        settings=settings or {},
        generator=torch.Generator().manual_seed(seed),
    )
    return model, method


def _changed(before: torch.nn.Module, after: torch.nn.Module) -> bool:
    return any(
        not torch.equal(a, b)
        for a, b in zip(before.state_dict().values(), after.state_dict().values(), strict=True)
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_trains_encoder_and_head(name):
    model, method = _make(name)
    before = copy.deepcopy(model)
    out = method.update(_batch())
    assert all(torch.isfinite(torch.as_tensor(v)) for v in out.values())
    assert _changed(before.encoder, model.encoder)
    assert _changed(before.head, model.head)


@pytest.mark.slow
@pytest.mark.parametrize("step", ["separate", "joint"])
def test_mi_with_lambda_zero_is_vanilla(step):
    model_v, vanilla = _make("vanilla")
    model_m, mi = _make("mi", {"preset": "paper", "lambda": 0.0, "step": step, "critic_steps": 2})
    batch = _batch()
    vanilla.update(batch)
    mi.update(batch)
    for a, b in zip(model_v.parameters(), model_m.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_delay_steps_trains_plain_ce_for_that_many_steps_then_descends_i():
    """Across an epoch boundary too: the delay counts the run's steps, not the epoch's."""
    plain = {"delay_epochs": 0, "floor": False, "lambda": 0.0}
    model_p, ce_only = _make("mi", plain)
    model_d, delayed = _make("mi", {**plain, "lambda": 2.0, "delay_steps": 3})
    for i in range(4):
        if i == 2:  # a new epoch does not restart the count
            ce_only.start_epoch(lambda: iter(()))
            delayed.start_epoch(lambda: iter(()))
        assert delayed.delay_over() == (i >= 3)
        ce_only.update(_batch(seed=i))
        delayed.update(_batch(seed=i))
        same = not _changed(model_p.encoder, model_d.encoder)
        assert same == (i < 3), i  # the MI gradient first moves the encoder at step 4
    assert delayed.state_dict()["counters"]["steps_done"] == 4
    model_r, resumed = _make("mi", {**plain, "lambda": 2.0, "delay_steps": 3})
    resumed.load_state_dict(delayed.state_dict())
    assert resumed.steps_done == 4 and resumed.delay_over()


@pytest.mark.parametrize(
    "epochs, steps, ends_at",
    # The step (counted from 0, 10 steps an epoch) at which the MI step first acts.
    [(0, 0, 0), (1, 0, 10), (0, 3, 3), (1, 25, 10), (3, 25, 25)],
)
def test_the_delay_ends_at_the_first_of_its_epochs_and_steps(epochs, steps, ends_at):
    _, mi = _make("mi", {"delay_epochs": epochs, "delay_steps": steps})

    def over(n: int) -> bool:
        mi.epoch, mi.steps_done = n // 10, n
        return mi.delay_over()

    assert next(n for n in range(100) if over(n)) == ends_at


@pytest.mark.slow
def test_mi_step_moves_the_encoder_not_the_head():
    # Separate step: after the CE step, only the encoder gets the MI step.
    paper = {"preset": "paper", "critic_steps": 0, "critic_warmup": False}
    model_a, a = _make("mi", {**paper, "lambda": 0.0})
    model_b, b = _make("mi", {**paper, "lambda": 1.0})
    batch = _batch()
    a.update(batch)
    b.update(batch)
    torch.testing.assert_close(model_a.head.weight, model_b.head.weight)
    assert _changed(model_a.encoder, model_b.encoder)


def test_summed_step_is_one_adam_step_on_ce_plus_the_clipped_mi_gradient():
    # lambda 0: exactly vanilla's step. lambda 1: the head (no MI gradient) takes the same
    # step; the encoder a different one, from the one optimiser (no MI Adam anywhere).
    summed = {"preset": "balanced", "step": "summed", "critic_steps": 0, "floor": False}
    model_v, vanilla = _make("vanilla")
    model_0, m0 = _make("mi", {**summed, "lambda": 0.0})
    model_1, m1 = _make("mi", {**summed, "lambda": 1.0})
    assert m1.penalty.encoder_opt is None and set(m1.optimizers()) == {"opt"}
    batch = _batch()
    for method in (vanilla, m0, m1):
        method.update(batch)
    for a, b in zip(model_v.parameters(), model_0.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(model_0.head.weight, model_1.head.weight)
    assert _changed(model_0.encoder, model_1.encoder)


def test_the_gaussian_term_takes_its_own_backward_in_the_mi_step():
    # The MI gradient is clipped to the CE gradient alone, so the Gaussian term's gradient
    # is taken apart: one backward through the encoder more than without it.
    counts = []
    for gaussian in (0.0, 1.0):
        model, mi = _make("mi", {"gaussian": gaussian, "delay_epochs": 0, "delay_steps": 0})
        first = next(model.encoder.parameters())
        seen = []
        first.register_hook(lambda g, seen=seen: seen.append(1))
        out = mi.update(_batch())
        assert float(out["mi"]) > 0  # the MI step was taken (not floored)
        counts.append(len(seen))
    assert counts == [2, 3]


def test_statistics_network_updates_do_not_touch_the_model():
    model, mi = _make("mi", {"critic_steps": 5})
    before_t = copy.deepcopy(mi.penalty.estimator)
    z = torch.randn(32, 64)
    snapshot = copy.deepcopy(model)
    for _ in range(5):
        mi.penalty.critic_step(z, _batch().c, _batch().y)
    assert _changed(before_t, mi.penalty.estimator)
    assert not _changed(snapshot, model)


def test_mi_presets_and_bad_settings():
    from midebias.methods.mi import MIDebias

    assert MIDebias.Settings.resolve({"preset": "paper"}).critic_steps == 40
    default = MIDebias.Settings.resolve({})
    assert default == MIDebias.Settings.resolve({"preset": "staged-gaussian"})
    assert MIDebias.Settings.resolve({}).balance is True
    with pytest.raises(ValueError, match="balance_min"):
        MIDebias.Settings.resolve({"balance_min": 0})
    assert MIDebias.Settings.resolve({"preset": "fast"}).step == "joint"
    with pytest.raises(ValueError, match="no preset"):
        MIDebias.Settings.resolve({"preset": "nope"})
    with pytest.raises(ValueError, match="step: must be one of"):
        MIDebias.Settings.resolve({"step": "both"})
    with pytest.raises(ValueError, match="lambda_: must be >= 0"):
        MIDebias.Settings.resolve({"lambda": -1})
    strict = MIDebias.Settings.resolve({"preset": "strict"})
    assert (strict.step, strict.lambda_, strict.critic_first) == ("summed", 2.0, True)
    assert MIDebias.Settings.resolve({"preset": "strict", "lambda": 1}).critic_first
    with pytest.raises(ValueError, match="critic_first: applies to step=shared"):
        MIDebias.Settings.resolve({"step": "separate", "critic_first": True})
    assert MIDebias.Settings.resolve({"preset": "strict", "no_uphill": True}).no_uphill
    guarded = MIDebias.Settings.resolve({"preset": "guarded"})
    assert guarded == dataclasses.replace(strict, preset="guarded", no_uphill=True)
    staged = MIDebias.Settings.resolve({"preset": "staged"})
    assert staged == dataclasses.replace(guarded, preset="staged", delay_epochs=1, delay_steps=71)
    # The default is `staged` with the closed-form Gaussian term; no other preset has it.
    assert default == dataclasses.replace(staged, preset="staged-gaussian", gaussian=1.0)
    others = [p for p in MIDebias.Settings.PRESETS if p != "staged-gaussian"]
    assert [MIDebias.Settings.resolve({"preset": p}).gaussian for p in others] == [0.0] * 9
    balanced = MIDebias.Settings.resolve({"preset": "balanced"})
    assert (balanced.step, balanced.lambda_, balanced.critic_first) == ("shared", 1.0, False)
    assert strict == dataclasses.replace(
        balanced, preset="strict", step="summed", lambda_=2.0, critic_first=True
    )
    with pytest.raises(ValueError, match="no_uphill: applies to step=summed"):
        MIDebias.Settings.resolve({"preset": "balanced", "no_uphill": True})
    assert staged.gaussian == 0.0
    assert MIDebias.Settings.resolve({"gaussian": 1}).gaussian == 1.0
    with pytest.raises(ValueError, match="gaussian: applies to step=shared"):
        MIDebias.Settings.resolve({"preset": "paper", "gaussian": 1})
    with pytest.raises(ValueError, match="gaussian: must be >= 0"):
        MIDebias.Settings.resolve({"gaussian": -1})


def test_blindeye_with_alpha_zero_is_vanilla_and_its_head_learns():
    model_v, vanilla = _make("vanilla")
    model_b, blind = _make("blindeye", {"alpha": 0.0})
    head_before = copy.deepcopy(blind.bias_head)
    batch = _batch()
    vanilla.update(batch)
    blind.update(batch)
    for a, b in zip(model_v.parameters(), model_b.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert _changed(head_before, blind.bias_head)


def test_blindeye_confusion_reaches_the_encoder_only():
    model_a, a = _make("blindeye", {"alpha": 0.0})
    model_b, b = _make("blindeye", {"alpha": 5.0})
    batch = _batch()
    a.update(batch)
    b.update(batch)
    assert _changed(model_a.encoder, model_b.encoder)
    torch.testing.assert_close(model_a.head.weight, model_b.head.weight)
    # The bias head is trained only on detached z, so alpha does not change its update.
    for p, q in zip(a.bias_head.parameters(), b.bias_head.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_lnl_reverses_the_bias_gradient_into_the_encoder():
    model_a, a = _make("lnl", {"grl_scale": 0.0, "entropy_weight": 0.0})
    model_b, b = _make("lnl", {"grl_scale": 1.0, "entropy_weight": 0.0})
    batch = _batch()
    a.update(batch)
    b.update(batch)
    assert _changed(model_a.encoder, model_b.encoder)
    torch.testing.assert_close(model_a.head.weight, model_b.head.weight)
    for p, q in zip(a.bias_head.parameters(), b.bias_head.parameters(), strict=True):
        torch.testing.assert_close(p, q)  # the head's own step does not see the reversal


def test_lnl_presets_keep_the_published_weights_by_default():
    lnl = get_method("lnl")
    assert lnl.Settings.resolve({}).grl_scale == 1.0  # Kim et al.'s mu
    assert lnl.Settings.resolve({}).entropy_weight == 0.01  # and lambda
    stable = lnl.Settings.resolve({"preset": "stable"})
    assert stable.grl_scale == 0.01 and stable.entropy_weight == 0.01
    assert lnl.Settings.resolve({"preset": "stable", "grl_scale": 0.5}).grl_scale == 0.5
    with pytest.raises(ValueError, match="no preset"):
        lnl.Settings.resolve({"preset": "nope"})


def test_gradient_reversal():
    from midebias.methods.adversarial import grad_reverse

    x = torch.ones(3, requires_grad=True)
    grad_reverse(x, 0.5).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((3,), -0.5))


def test_adversaries_need_a_categorical_code():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="categorical bias code"):
        get_method("lnl")(PaperDigitNet(), lr=1e-3, c_dim=3, c_groups=None)


def test_conditional_mi_pairs_within_class_and_needs_a_shuffle_estimator():
    from midebias.estimators.base import within_group_pairs
    from midebias.methods.mi import MIDebias

    g = torch.tensor([0, 1, 0, 2, 1, 0, 1, 3, 3])
    for seed in range(5):
        perm = torch.randperm(9, generator=torch.Generator().manual_seed(seed))
        partner = within_group_pairs(g, perm)
        assert (g[partner] == g).all()
        assert (partner[g != 2] != torch.arange(9)[g != 2]).all()
        assert partner[3] == 3  # group 2's single member (index 3) is paired with itself
        assert sorted(partner.tolist()) == list(range(9))  # a permutation
    with pytest.raises(ValueError, match="shuffle-based"):
        MIDebias.Settings.resolve({"conditional": True, "estimator": "infonce"})
    model, mi = _make(
        "mi", {"preset": "balanced", "conditional": True, "critic_steps": 1, "step": "joint"}
    )
    before = copy.deepcopy(model)
    mi.update(_batch())
    assert _changed(before.encoder, model.encoder)


@pytest.mark.parametrize("fraction", [0.5, 0.25])
def test_grad_fraction_sends_the_mi_gradient_through_the_first_rows_only(fraction):
    model, mi = _make("mi", {"grad_fraction": fraction})
    batch = _batch()
    batch.x.requires_grad_(True)
    z, z_mi = mi._split_features(batch)
    # The same values as one forward of the whole batch, for the CE loss and the estimate.
    torch.testing.assert_close(z, model.features(batch.x))
    assert torch.equal(z, z_mi)
    (grad,) = torch.autograd.grad(mi.penalty.estimate(z_mi, batch.c), batch.x, retain_graph=True)
    k = round(fraction * len(batch.x))
    per_row = grad.abs().flatten(1).sum(1)
    assert bool((per_row[:k] > 0).all()) and bool((per_row[k:] == 0).all())
    # The CE loss still reaches every row.
    (ce_grad,) = torch.autograd.grad(model.head(z).logsumexp(1).sum(), batch.x)
    assert bool((ce_grad.abs().flatten(1).sum(1) > 0).all())


def test_grad_fraction_changes_the_mi_step_and_not_a_batchnorm_network():
    from midebias.models import SimpleConvNet

    batch = _batch()
    runs = {}
    for fraction in (1.0, 0.5):
        # floor off: the MI step is taken whatever the sign of the estimate
        model, mi = _make("mi", {"grad_fraction": fraction, "floor": False})
        mi.update(batch)
        runs[fraction] = model
    # One step: the same CE step (the head sees the same z), another MI step.
    torch.testing.assert_close(runs[1.0].head.weight, runs[0.5].head.weight)
    assert _changed(runs[1.0].encoder, runs[0.5].encoder)

    # With BatchNorm a split batch would change the statistics: the whole batch is used.
    nets = {}
    for fraction in (1.0, 0.5):
        torch.manual_seed(0)
        model = SimpleConvNet()
        method = get_method("mi")(
            model,
            lr=1e-3,
            c_dim=24,
            settings={"grad_fraction": fraction},
            generator=torch.Generator().manual_seed(0),
        )
        method.update(batch)
        nets[fraction] = model
    assert not _changed(nets[1.0], nets[0.5])


def test_grad_fraction_must_be_a_fraction():
    from midebias.methods.mi import MIDebias

    for bad in (0, 1.5, -0.1):
        with pytest.raises(ValueError, match="grad_fraction"):
            MIDebias.Settings.resolve({"grad_fraction": bad})
