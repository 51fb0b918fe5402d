"""The paper's method: descend a neural estimate of I(z; c) while the estimator ascends it.

Ragonesi et al. (paper and authors' code): minimise CE(g(f(x)), y) + lambda * I(z; c) over the
encoder f and head g, with I estimated by a statistics network T trained at the same time.

Every setting, its default and its meaning are in `MISettings` below (presets: named
instances of it). How the MI gradient reaches the encoder (`step`):
- "separate" (the authors' code): a CE step with Adam(lr); then, on the same minibatch with
  the updated weights, the gradients of CE and of the MI estimate are computed for every
  encoder tensor, the MI gradient is rescaled to norm min(||g_CE||, ||g_MI||) (MINE's
  adaptive clipping), and a second Adam with lr * lambda_ descends it.
- "shared" (preset "balanced"): the same two Adam steps, both from one forward pass: the MI
  gradient is taken at the weights the CE gradient was taken at and clipped per tensor to
  that CE gradient (`MIPenalty.step`). One encoder forward and two backwards per step,
  where "separate" takes two and three.
- "joint": one forward pass; the MI gradient w.r.t. z is rescaled to the norm of dCE/dz
  (clipping in representation space) and added, times lambda_, to the CE gradient; one
  backward through the encoder and one Adam step: about the cost of a vanilla step plus T.
- "summed" (the default): one forward pass and the shared step's two backwards; the MI
  gradient, clipped per tensor to the CE gradient as in "shared", is added lambda_ times to
  the CE gradient and one Adam steps (MINE's adaptive clipping as Belghazi et al. apply
  it: one update of the sum). With lambda_ <= 1 the MI part can then never outgrow the CE
  part in the update, where a second Adam moves every weight by about lr x lambda_
  however small its gradient; `no_uphill` keeps the sum from climbing the CE loss.

In all four, lambda_ sets the size of the encoder's MI update relative to its cross-entropy
update (lambda_ = 1: at most as large), so the same value means the same in either mode.

How T is trained (`critic_source`), `critic_steps` updates after every step:
- "pool" (the authors' code): on the first `critic_steps` minibatches of the epoch, each one
  re-encoded with the current encoder (one encoder forward per T update).
- "recent": on the detached z of this step and of the last `buffer` steps; the encoder is
  never re-run for T. With `critic_first` (steps "shared" and "summed") those updates come
  before the estimate whose gradient the encoder descends, not after.
With `critic_warmup`, each epoch starts with one T update on every minibatch (authors' code).

With `conditional`, the estimator's marginal pairs are drawn within the same class y, so it
estimates I(z; c | y): the bias information in z beyond what the label explains. On
Colored MNIST, where the training colour is almost a function of the label, this is the part
of I(z; c) that a shape-based z does not have (docs/method.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from midebias.estimators import ESTIMATORS
from midebias.methods.base import Batch, Method
from midebias.methods.settings import SettingError, Settings, setting
from midebias.models import has_batchnorm
from midebias.penalty import CONDITIONAL_ESTIMATORS, MIPenalty, clip_to_reference

#: The steps whose MI update `MIPenalty.step` takes (its own Adam, or added to .grad).
PENALTY_STEPS = ("shared", "summed")


@dataclass(frozen=True)
class MISettings(Settings):
    """The field defaults are preset "staged-gaussian" (the default); "paper" is the
    authors'."""

    OWNER = "mi"
    preset: str = setting(
        "staged-gaussian",
        "the named settings to start from",
        choices=(
            "staged-gaussian",
            "staged",
            "balanced",
            "balanced-separate",
            "strict",
            "guarded",
            "best",
            "paper",
            "fast",
            "parity",
        ),
    )
    lambda_: float = setting(
        2.0,
        "how strongly the encoder descends the MI estimate, relative to its cross-entropy "
        "update: the MI step's learning rate is lambda_ x lr (step=separate), or the clipped "
        "MI gradient is added lambda_ times (step=joint); on the command line: lambda",
        low=0,
    )
    estimator: str = setting("dv", "MI estimator of the penalty", choices=tuple(ESTIMATORS))
    step: str = setting(
        "summed",
        "separate: a CE step, then an MI step on the same batch (authors' code); shared: the "
        "same two Adam steps, both from one forward pass; summed: one Adam step on the CE "
        "gradient plus lambda_ x the MI gradient clipped per tensor; joint: one backward of "
        "CE plus the MI gradient clipped in z space",
        choices=("separate", "shared", "summed", "joint"),
    )
    clip: bool = setting(True, "rescale the MI gradient to the norm of the CE gradient (MINE)")
    grad_fraction: float = setting(
        1.0,
        "step=shared or summed: the MI gradient reaches the encoder through this fraction of each "
        "batch (the encoder runs it in two parts; the estimate still uses all of it); 1: "
        "the whole batch. Networks with BatchNorm always use the whole batch",
        above=0,
        high=1,
    )
    conditional: bool = setting(
        False, "estimate I(z; c | y): the critic's marginal pairs drawn within classes"
    )
    critic_steps: int = setting(10, "critic (statistics network) updates per training step", low=0)
    critic_lr: float = setting(1e-3, "the critic's Adam learning rate", above=0)
    critic_hidden: int = setting(64, "hidden width of the critic", low=1)
    critic_layers: int = setting(3, "layers of the critic", low=1)
    critic_source: str = setting(
        "recent",
        "what the critic trains on: pool (the epoch's first critic_steps batches re-encoded, "
        "authors' code) or recent (the detached z of the last buffer + 1 steps)",
        choices=("pool", "recent"),
    )
    buffer: int = setting(8, "earlier steps whose detached z the critic also trains on", low=0)
    critic_first: bool = setting(
        True,
        "step=shared or summed: the critic trains on the batch's z before the encoder's MI "
        "gradient is taken from it (else after)",
    )
    no_uphill: bool = setting(
        True,
        "step=summed: where a tensor's CE gradient plus lambda_ x its clipped MI gradient "
        "would climb the CE loss, remove just enough of the MI part along the CE gradient "
        "that it does not (MIPenalty(no_uphill=True))",
    )
    gaussian: float = setting(
        1.0,
        "step=shared or summed: weight of the closed-form Gaussian MI of z and c over the "
        "batch and the critic's kept ones (what a linear read of c from z finds; no critic), "
        "a term added to the CE loss, not clipped (MIPenalty(gaussian=...)); 0: none",
        low=0,
    )
    critic_batch: int = setting(512, "samples per critic update (recent source)", low=1)
    critic_warmup: bool = setting(
        False, "start each epoch with a critic update on every batch (authors' code)"
    )
    normalize: bool = setting(True, "the critic sees z standardised with running statistics")
    floor: bool = setting(True, "descend max(I_hat, 0): never reward fooling the critic")
    delay_epochs: int = setting(
        1,
        "epochs of plain CE (T still trains) before the encoder descends I; with "
        "delay_steps, the delay ends at whichever of the two is set (not 0) and comes first",
        low=0,
    )
    delay_steps: int = setting(
        71,
        "training steps of plain CE before the encoder descends I, counted from the run's "
        "first step (see delay_epochs); both 0: I is descended from the first step",
        low=0,
    )
    balance: bool = setting(
        True, "draw training batches with weights 1 / q(y | c) (midebias.sampling)"
    )
    balance_min: float = setting(0.01, "floor of q(y | c) in those weights", above=0, high=1)

    ADDED: ClassVar[dict[str, Any]] = {
        "grad_fraction": 1.0,
        "critic_first": False,
        "no_uphill": False,
        "delay_steps": 0,
        "gaussian": 0.0,
    }

    def check(self) -> None:
        if self.conditional and self.estimator not in CONDITIONAL_ESTIMATORS:
            raise SettingError(
                self.OWNER,
                "conditional",
                "needs a shuffle-based estimator "
                f"({', '.join(CONDITIONAL_ESTIMATORS)}), not {self.estimator!r}",
            )
        if self.critic_first and self.step not in PENALTY_STEPS:
            raise SettingError(
                self.OWNER,
                "critic_first",
                f"applies to step={' or step='.join(PENALTY_STEPS)}, not step={self.step}",
            )
        if self.gaussian and self.step not in PENALTY_STEPS:
            raise SettingError(
                self.OWNER,
                "gaussian",
                f"applies to step={' or step='.join(PENALTY_STEPS)}, not step={self.step}",
            )
        if self.no_uphill and self.step != "summed":
            raise SettingError(
                self.OWNER, "no_uphill", f"applies to step=summed, not step={self.step}"
            )
        if self.step in PENALTY_STEPS and self.critic_source != "recent":
            raise SettingError(
                self.OWNER, "critic_source", f"step={self.step} trains T on recent z: use recent"
            )


#: What the schedules older than "staged" leave out: lambda_ 1, no critic-first or no-uphill
#: step, the MI step from the first step, no Gaussian term.
_UNSTAGED = {
    "gaussian": 0.0,
    "lambda_": 1.0,
    "critic_first": False,
    "no_uphill": False,
    "delay_epochs": 0,
    "delay_steps": 0,
}
#: The authors' TF1 schedule for digits (rugrag/learn-unbiased). Their classifier lr is
#: 1e-4 over 500 epochs: pass --lr 1e-4 for that too.
_PAPER = MISettings(
    preset="paper",
    **_UNSTAGED,
    step="separate",
    critic_warmup=True,
    critic_steps=40,
    critic_lr=1e-4,
    critic_source="pool",
    buffer=0,
    normalize=False,
    floor=False,
    balance=False,
    balance_min=0.02,
)
#: A critic that keeps up (shared by "best" and "balanced"): standardised z, Adam 1e-3,
#: 10 updates per step on the detached z of the last 9 steps, estimate floored at 0.
_KEEPS_UP = {
    "critic_source": "recent",
    "critic_steps": 10,
    "critic_lr": 1e-3,
    "buffer": 8,
    "normalize": True,
    "floor": True,
}
#: The default before "staged": the CE and MI Adam steps from one forward pass (`shared`),
#: lambda_ 1, the MI step from the first step.
_BALANCED = MISettings(preset="balanced", **_UNSTAGED, step="shared")
_STRICT = dataclasses.replace(
    _BALANCED, preset="strict", step="summed", lambda_=2.0, critic_first=True
)
MISettings.PRESETS = {
    # The default: the critic that keeps up, unconditional, on bias-balanced batches
    # (samples drawn with weights 1 / q(y | c), so that c says little about y in what the
    # network sees; see midebias.sampling). The first epoch, or the first 71 steps if that
    # is shorter (about 9,000 samples at batch 128: one epoch of the debiasing gauge), is
    # plain cross-entropy on those batches (T trains meanwhile); then one Adam step on the
    # CE gradient plus twice the MI gradient, clipped per tensor to the CE gradient and kept
    # from climbing the CE loss (`summed`, `no_uphill`), from a critic that has trained on
    # the batch's z first.
    # Chosen on the gauge's val_unbiased split and bias probe (docs/debiasing.md). Beside
    # the critic, the closed-form Gaussian MI of z and c over the batch and the kept ones
    # (what a linear read of c finds; no critic to evade) is added to the CE loss with weight
    # 1, its gradient from a backward of its own: level with `staged` on the gauge and on
    # Biased MNIST, ahead at full size (0.808 against 0.720 at sigma^2 0.020), with a lower
    # bias probe everywhere, at about 1.35x `staged`'s time per step.
    "staged-gaussian": MISettings(),
    # The default until the Gaussian term joined it: the same without the term.
    "staged": MISettings(preset="staged", gaussian=0.0),
    # The default until "staged": the same critic and batches, the MI step from the first
    # step, as its own Adam step (lr x lambda_ 1) beside the CE step, both from one
    # forward pass (`shared`), T trained after the step.
    "balanced": _BALANCED,
    # `balanced` with the authors' separate steps (a second forward with the updated
    # weights) and their warm-up pass, about 1.8x its cost for the same accuracy within
    # seed noise at sigma^2 0.020 (docs/debiasing.md).
    "balanced-separate": dataclasses.replace(
        _BALANCED, preset="balanced-separate", step="separate", critic_warmup=True
    ),
    # `balanced` with one Adam on the CE gradient plus twice the clipped MI gradient
    # (`summed`), from a critic that has trained on the batch's z first: a lower bias probe
    # than `balanced` at sigma^2 0.020, behind it at weaker biases, and it can lose the task.
    "strict": _STRICT,
    # `strict` with the MI part of each tensor's update kept from climbing the CE loss
    # (`no_uphill`): on Biased MNIST `strict` lost the task on one seed, this did not.
    # `staged` without the first steps of plain CE.
    "guarded": dataclasses.replace(_STRICT, preset="guarded", no_uphill=True),
    # The conditional estimate I(z; c | y) with the critic that keeps up and the authors'
    # separate CE and MI steps with per-tensor clipping, on plain batches.
    "best": dataclasses.replace(_PAPER, preset="best", conditional=True, **_KEEPS_UP),
    "paper": _PAPER,
    # One forward and one backward per step (MI gradient clipped in z space and added to
    # the CE gradient), T on recent detached z, no warm-up pass.
    "fast": dataclasses.replace(
        _PAPER,
        preset="fast",
        step="joint",
        conditional=True,
        critic_steps=5,
        critic_warmup=False,
        lambda_=10.0,
        **{k: v for k, v in _KEEPS_UP.items() if k != "critic_steps"},
    ),
}
# `fast`'s schedule on the unconditional I(z; c) (demographic parity: predictions that do
# not depend on c), at the lambda_ chosen on Adult's validation split: the default of
# MIFairClassifier (docs/tabular.md).
MISettings.PRESETS["parity"] = dataclasses.replace(
    MISettings.PRESETS["fast"], preset="parity", conditional=False, lambda_=3.0
)


def split_point(fraction: float, n: int) -> int:
    """How many of a batch's n rows the MI gradient goes through (`grad_fraction`)."""
    return min(n, max(1, round(fraction * n)))


class MIDebias(Method):
    name = "mi"
    Settings = MISettings

    def __init__(self, model, **kw):
        super().__init__(model, **kw)
        h = self.settings
        # The estimator, its optimiser and the buffer of recent z live in the penalty that
        # users can also drop into their own loops.
        self.penalty = MIPenalty(
            model.z_dim,
            self.c_dim,
            lambda_=h.lambda_,
            estimator=h.estimator,
            conditional=h.conditional,
            clip=h.clip,
            critic_steps=h.critic_steps,
            critic_lr=h.critic_lr,
            critic_hidden=h.critic_hidden,
            critic_layers=h.critic_layers,
            buffer=h.buffer,
            critic_batch=h.critic_batch,
            normalize=h.normalize,
            floor=h.floor,
            generator=self.generator,
            params=model.encoder.parameters() if h.step in PENALTY_STEPS else None,
            lr=self.lr,
            update="add" if h.step == "summed" else "adam",
            critic_first=h.critic_first,
            no_uphill=h.no_uphill,
            gaussian=h.gaussian,
            # The loop checks every epoch's losses; a finiteness check per critic update
            # would cost a device sync each (shapes and dtypes are still checked).
            check_finite=False,
        ).to(next(model.parameters()).device)
        self.encoder_params = list(model.encoder.parameters())
        # Splitting a batch would change BatchNorm's statistics (`grad_fraction`).
        self.has_batchnorm = has_batchnorm(model)
        self.opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        # The separate step's MI Adam (the shared step's lives in the penalty; summed and
        # joint have none).
        self.opt_mi = None
        if h.step == "separate":
            self.opt_mi = torch.optim.Adam(self.encoder_params, lr=self.lr * h.lambda_)
        self.pool: list[Batch] = []
        self.epoch = 0  # index of the current epoch, from 0
        self.epochs_started = 0
        self.steps_done = 0  # training steps taken, over all epochs
        self.mi_sum = torch.zeros(())
        self.mi_count = 0

    def modules(self):
        return {"model": self.model, "estimator": self.penalty.estimator}

    def sample_weights(self, c, y):
        """Bias-balanced sampling weights 1 / q(y | c) when `balance` is on (else None)."""
        if not self.settings.balance:
            return None
        from midebias.sampling import balancing_weights

        dev = self.generator.device if self.generator is not None else "cpu"
        seed = int(torch.randint(2**31 - 1, (1,), generator=self.generator, device=dev))
        return balancing_weights(
            c,
            y,
            num_classes=self.model.num_classes,
            min_prob=self.settings.balance_min,
            seed=seed,
        )

    def optimizers(self):
        return {"opt": self.opt, **({"opt_mi": self.opt_mi} if self.opt_mi else {})}

    def scheduled_optimizers(self):
        """The classifier's Adam and the MI step's (step=separate's, or the penalty's with
        step=shared); the critic's keeps its learning rate."""
        own = self.penalty.encoder_opt
        return [*self.optimizers().values(), *([own] if own is not None else [])]

    def state_dict(self):
        # The penalty's state holds the critic's optimiser, the running statistics of z
        # and the buffer of recent z. The pool of batches is not kept: every epoch starts
        # by rebuilding it (checkpoints are taken between epochs).
        return {
            **super().state_dict(),
            "penalty": self.penalty.state_dict(),
            "counters": {
                "epoch": self.epoch,
                "epochs_started": self.epochs_started,
                "steps_done": self.steps_done,
                "mi_sum": self.mi_sum.detach().cpu(),
                "mi_count": self.mi_count,
            },
        }

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.penalty.load_state_dict(state["penalty"])
        k = state["counters"]
        self.epoch, self.epochs_started = int(k["epoch"]), int(k["epochs_started"])
        # Checkpoints older than delay_steps did not count steps (their runs have no step delay).
        self.steps_done = int(k.get("steps_done", 0))
        self.mi_sum, self.mi_count = k["mi_sum"].clone(), int(k["mi_count"])

    def _encode(self, batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            return self.gather(self.model.features(batch.x), batch)

    def _critic_step(self, batch: Batch) -> None:
        """One critic update on `batch` re-encoded (the global batch's z, c and y)."""
        c, y = self.gather(batch.c, batch), self.gather(batch.y, batch)
        self.penalty.critic_step(self._encode(batch), c, y)

    def start_epoch(self, batches) -> dict[str, float]:
        self.epoch = self.epochs_started
        self.epochs_started += 1
        self.mi_sum = torch.zeros(())
        self.mi_count = 0
        h = self.settings
        if h.critic_source == "pool":
            self.pool = []
        for i, batch in enumerate(batches()):
            if h.critic_source == "pool" and i < h.critic_steps:
                self.pool.append(batch)
            if not h.critic_warmup:
                if h.critic_source != "pool" or i + 1 >= h.critic_steps:
                    break
                continue
            self._critic_step(batch)
        return {}

    # -- one step ------------------------------------------------------------------------
    def delay_over(self) -> bool:
        """Whether the plain-CE start has ended before the next step: at the first of
        delay_epochs epochs and delay_steps steps, counting only the ones set (not 0)."""
        h = self.settings
        ended = []
        if h.delay_epochs:
            ended.append(self.epoch >= h.delay_epochs)
        if h.delay_steps:
            ended.append(self.steps_done >= h.delay_steps)
        return not ended or any(ended)

    def update(self, batch: Batch) -> dict[str, float]:
        h = self.settings
        active = self.delay_over() and h.lambda_ > 0
        self.steps_done += 1
        step = {
            "separate": self._separate_step,
            "shared": self._shared_step,
            "summed": self._shared_step,  # the penalty adds the MI gradient to .grad
            "joint": self._joint_step,
        }[h.step]
        # Over several processes, everything after the encoder sees the global batch.
        c, y = self.gather(batch.c, batch), self.gather(batch.y, batch)
        ce, mi, z = step(batch, c, y, active)
        self.mi_sum = self.mi_sum.to(mi.device) + mi.detach()  # no device sync per step
        self.mi_count += 1
        if z is None:
            pass  # the shared step's MIPenalty.step has trained T on this z already
        elif h.critic_source == "pool":
            for i in range(h.critic_steps if self.pool else 0):
                self._critic_step(self.pool[i % len(self.pool)])
        else:
            self.penalty.train_critic(z, c, y)
        return {"ce": ce.detach(), "mi": mi.detach()}

    def _separate_step(self, batch: Batch, c: torch.Tensor, y: torch.Tensor, active: bool):
        z = self.gather(self.model.features(batch.x), batch)
        ce = F.cross_entropy(self.model.head(z), y)
        self.opt.zero_grad(set_to_none=True)
        ce.backward()
        self.sync_grads(self.model)
        self.opt.step()
        # The MI step, on the same minibatch with the updated weights.
        z = self.gather(self.model.features(batch.x), batch)
        mi = self.penalty.estimate(z, c, y)
        if active and not (self.settings.floor and float(mi.detach()) <= 0):
            params = self.encoder_params
            g_mi = torch.autograd.grad(mi, params, retain_graph=self.settings.clip)
            self._sync(g_mi)
            if self.settings.clip:
                ce_now = F.cross_entropy(self.model.head(z), y)
                g_ce = torch.autograd.grad(ce_now, params)
                self._sync(g_ce)  # the clip compares global-batch gradients
                g_mi = [clip_to_reference(m, r.norm()) for m, r in zip(g_mi, g_ce, strict=True)]
            for p, g in zip(params, g_mi, strict=True):
                p.grad = g
            self.opt_mi.step()
        return ce, mi, z.detach()

    def _shared_step(self, batch: Batch, c: torch.Tensor, y: torch.Tensor, active: bool):
        """The separate step's two Adam updates from one forward pass, through
        `MIPenalty.step`: the MI gradient is taken at the weights the CE gradient was taken
        at and clipped per tensor to that CE gradient's norm (which the CE backward has
        already computed). One encoder forward and two backwards instead of two and three.
        The penalty trains T on this z itself."""
        z, z_mi = self._split_features(batch)
        ce = F.cross_entropy(self.model.head(z), y)
        self.opt.zero_grad(set_to_none=True)
        if active:
            # The MI gradient is clipped to the CE gradient alone; the Gaussian term (if any)
            # takes its own backward in `step`. Its gradient in this backward instead
            # (`gaussian_term`, `gaussian_in_loss`) saves that backward but changes the clip's
            # reference, and fell short at full size (docs/debiasing.md).
            ce.backward(retain_graph=True)
            self.sync_grads(self.model)  # the global batch's task gradient: the clip's reference
            mi = self.penalty.step(z_mi, c, y, reduce=self._sync)
        else:
            ce.backward()
            self.sync_grads(self.model)
            if self.settings.critic_first:
                self.penalty.train_critic(z, c, y)
            with torch.no_grad():
                mi = self.penalty.estimate(z, c, y)
            if not self.settings.critic_first:
                self.penalty.train_critic(z, c, y)
        self.opt.step()
        return ce, mi, None

    def _split_features(self, batch: Batch):
        """z of the global batch, twice: for the CE loss, and for the MI estimate, whose
        gradient reaches the encoder only through the first `grad_fraction` of this
        process's rows (the rest detached). The encoder runs the two parts separately, so
        the MI backward costs that fraction of a full one; the values are the same."""
        x = batch.x
        k = split_point(self.settings.grad_fraction, len(x))
        if k >= len(x) or self.has_batchnorm:
            z = self.gather(self.model.features(x), batch)
            return z, z
        za, zb = self.model.features(x[:k]), self.model.features(x[k:])
        z = self.gather(torch.cat([za, zb]), batch)
        return z, self.gather(torch.cat([za, zb.detach()]), batch)

    def _joint_step(self, batch: Batch, c: torch.Tensor, y: torch.Tensor, active: bool):
        z = self.gather(self.model.features(batch.x), batch)
        ce = F.cross_entropy(self.model.head(z), y)
        if active:
            term = self.penalty(z, c, y=y, task_loss=ce, train_critic=False)
            mi = self.penalty.last_estimate
        else:
            term = 0.0
            with torch.no_grad():
                mi = self.penalty.estimate(z, c, y)
        self.opt.zero_grad(set_to_none=True)
        (ce + term).backward()  # one backward through the encoder for both terms
        self.sync_grads(self.model)
        self.opt.step()
        return ce, mi, z.detach()

    def _sync(self, grads) -> None:
        """Average gradients from torch.autograd.grad over the processes (in place)."""
        if self.dist is not None:
            self.dist.average(grads)

    def train_metrics(self) -> dict[str, float]:
        """mi_train: the training-time estimate, averaged over the last epoch's steps."""
        return {"mi_train": float(self.mi_sum) / max(self.mi_count, 1)}
