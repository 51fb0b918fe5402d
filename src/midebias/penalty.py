"""`MIPenalty`: the paper's MI term for your own PyTorch training loop, in two forms.

The encoder's own MI step (what the mi method does by default):

    penalty = MIPenalty(z_dim=64, c_dim=24, params=encoder.parameters(), lr=1e-3)
    z = encoder(x)
    ce = F.cross_entropy(head(z), y)
    optimiser.zero_grad()
    ce.backward(retain_graph=True)                   # the task gradient, in .grad
    penalty.step(z, c)                               # an Adam step down I_hat, then T trains
    optimiser.step()

By default (``gaussian=1``) `step` also adds to ``.grad`` the gradient of a closed-form
Gaussian MI of z and c (what a linear read of c from z finds), from one more backward; the
loss-term form adds that term to what it returns.

With ``update="add"`` the same call leaves task gradient + lambda_ x the clipped MI gradient
in ``.grad`` and your optimiser takes the one step (no Adam of its own; the mi method's
``step=summed``).

A loss term (one backward):

    loss = ce + penalty(z, c, task_loss=ce)          # trains T, returns lambda * clipped I
    loss.backward(); optimiser.step()

Each call of the term first trains the statistics network T for `critic_steps` updates on detached z
(minibatches of `critic_batch` drawn from this step's z and up to `buffer` recent steps'),
then returns a term whose value is
lambda_ * I_hat(z; c) and whose gradient w.r.t. z is lambda_ * dI/dz, rescaled to norm
min(||dI/dz||, ||d task_loss/dz||) when `clip` and a task loss are given (MINE's adaptive
clipping, applied in representation space).

T sees z standardised with running (detached) means and variances: an invertible affine
map, so the MI is unchanged, but the critic trains several times faster on ReLU features
whose scale drifts during training (benchmarks/results/mi-search/NOTES.md).
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import nn

from midebias.estimators import make_estimator
from midebias.estimators.gaussian import gaussian_mi

#: Estimators whose marginal term comes from an in-batch shuffle, so that drawing the
#: shuffle within classes turns them into estimates of I(z; c | y).
CONDITIONAL_ESTIMATORS = ("dv", "mine", "nwj")


def clip_to_reference(grad: torch.Tensor, ref_norm: torch.Tensor) -> torch.Tensor:
    """Rescale `grad` to norm min(||grad||, ref_norm) (Belghazi et al. 2018, Sec. 3.2)."""
    norm = grad.norm()
    return grad * torch.clamp(ref_norm / (norm + 1e-12), max=1.0)


def add_without_climbing(task: torch.Tensor, mi: torch.Tensor) -> torch.Tensor:
    """task + mi, where mi loses just enough of its component along task that the sum does
    not point uphill in the task loss: <task + mi, task> >= 0. Unchanged (exactly task +
    mi) where the sum already goes downhill. No device sync (a mask, not an `if`)."""
    tt = (task * task).sum()
    excess = (mi * task).sum() + tt  # <task + mi, task>
    coef = torch.where((excess < 0) & (tt > 0), excess / tt, torch.zeros_like(tt))
    return task + mi - coef * task


class MIPenalty(nn.Module):
    """lambda_ * I(z; c), estimated by a critic trained inside the penalty.

    Args:
        z_dim, c_dim: widths of z and of c (c as float features: one-hot or continuous).
        lambda_: the penalty's weight (the same lambda_ as the mi method's settings).
        estimator: a name from `midebias.estimators.ESTIMATORS` ("dv" as in the paper).
        conditional: estimate I(z; c | y) (pass y): marginal pairs drawn within classes.
        clip: rescale the MI gradient to the task gradient's norm: on z (the term, needs
            task_loss) or per encoder tensor (`step`, reads the task gradient in .grad).
        critic_steps, critic_lr, critic_hidden, critic_layers: T's training and shape. The
            defaults are the critic of the mi method's default preset (Adam 1e-3, 10 updates
            per call on the last 9 calls' z), which keeps up with a changing encoder.
        buffer: recent minibatches of detached z kept for T's updates.
        critic_batch: samples per T update, drawn from the kept minibatches.
        normalize: standardise z for T with running statistics (see module doc).
        floor: descend max(I_hat, 0) instead of I_hat. The true MI is never negative, so a
            negative estimate is the critic's error; descending it only teaches the encoder
            to fool the critic (benchmarks/results/mi-search/NOTES.md).
        generator: torch.Generator for the estimator's shuffles (reproducibility).
        check_finite: refuse z or c holding NaN or inf (one device sync per call).
        params, lr: the encoder's tensors and learning rate, for `step` (its own Adam at
            lr x lambda_; lr is not used with update="add"); not needed for the loss-term
            form.
        update: what `step` does with the clipped MI gradient. "adam": its own Adam step
            (lr x lambda_), as the authors' separate MI step. "add": lambda_ times it is
            added to each tensor's ``.grad``, so that your optimiser takes one step on the
            task gradient plus the penalty's (MINE's adaptive clipping, per tensor); the
            penalty then has no optimiser of its own.
        critic_first: in `step`, train T on this call's z (and the kept ones) before the
            estimate and its gradient are taken, instead of after, so that the encoder
            descends a critic that has seen where it is now. Same cost. With it, the
            encoder cannot run ahead of T by a step: on the debiasing gauge it is what
            lets update="add" at lambda_ 2 remove the attribute (docs/debiasing.md).
        no_uphill: with update="add", where a tensor's task gradient plus lambda_ times the
            clipped MI gradient would climb the task loss (their sum has a negative inner
            product with the task gradient, possible once lambda_ > 1), remove just enough
            of the MI part along the task gradient that it does not
            (`add_without_climbing`). Elsewhere nothing changes. At lambda_ 2 this kept a
            run from losing the task along with the attribute (docs/debiasing.md).
        gaussian: weight of the closed-form Gaussian MI of the batch and the kept recent
            ones (`midebias.estimators.gaussian.gaussian_mi`: what a linear read of c from
            z can find; no critic to evade, but blind to non-linear dependence), a term that
            joins the task loss: in `step` its gradient is added to ``.grad`` for your
            optimiser (after the MI update, neither clipped nor floored), and the loss-term
            form returns it added to the penalty. Or add `gaussian_term` to your task loss
            and call ``step(..., gaussian_in_loss=True)``: one backward through the encoder
            fewer, but the MI gradient is then clipped to the gradient of the task loss
            with the term in it (on Colored MNIST at full size this did worse than the
            term's own backward: docs/debiasing.md). Default 1: in a plain loop with a
            shortcut attribute (the loop of examples/shortcut_in_your_loop.py, 5 seeds in
            benchmarks/results/debiasing/toy_gaussian.py) it brought a
            linear probe of the attribute from 0.866 to 0.660 (chance 0.5) and an MLP probe
            from 0.979 to 0.846, against the critic alone. It needs many more samples than
            z and c are wide (a warning says when the batch and the kept ones hold fewer
            than 8 x that); 0: no such term.

    Every call checks its inputs before it changes any state: z must be float32 of shape
    (N, z_dim), c float32 of shape (N, c_dim), y (if given) of length N, all finite (with
    `check_finite`); otherwise a ValueError says what is wrong and the critic, its optimiser,
    the running statistics and the buffer of recent z are left as they were. z of another
    dtype is refused rather than cast (pass ``z.float()``): a silent cast would hide a
    mixed-precision loop whose encoder gradient the penalty does not see in that dtype.
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        *,
        lambda_: float = 1.0,
        estimator: str = "dv",
        conditional: bool = False,
        clip: bool = True,
        critic_steps: int = 10,
        critic_lr: float = 1e-3,
        critic_hidden: int = 64,
        critic_layers: int = 3,
        buffer: int = 8,
        critic_batch: int = 512,
        normalize: bool = True,
        floor: bool = True,
        generator: torch.Generator | None = None,
        check_finite: bool = True,
        params=None,
        lr: float = 1e-3,
        update: str = "adam",
        critic_first: bool = False,
        no_uphill: bool = False,
        gaussian: float = 1.0,
    ):
        super().__init__()
        if not (math.isfinite(gaussian) and gaussian >= 0):
            raise ValueError(f"MIPenalty: gaussian must be a finite number >= 0, got {gaussian}")
        self.gaussian = float(gaussian)
        if not (math.isfinite(lambda_) and lambda_ >= 0):
            raise ValueError(f"lambda_ must be a finite number >= 0, got {lambda_}")
        if conditional and estimator not in CONDITIONAL_ESTIMATORS:
            raise ValueError(
                "conditional needs a shuffle-based estimator "
                f"({', '.join(CONDITIONAL_ESTIMATORS)}), not {estimator!r}"
            )
        if update not in ("adam", "add"):
            raise ValueError(f"MIPenalty: update must be 'adam' or 'add', got {update!r}")
        if no_uphill and update != "add":
            raise ValueError(
                "MIPenalty: no_uphill applies to update='add' (the MI gradient added to the "
                "task gradient); with update='adam' the MI step has its own optimiser"
            )
        self.no_uphill = bool(no_uphill)
        self._lambda = float(lambda_)
        # The encoder's MI step (`step`): its own Adam over `params` with lr x lambda_
        # (update="adam"), or the clipped gradient added to .grad (update="add").
        self.update = update
        self.critic_first = bool(critic_first)
        self.lr = float(lr)
        self.params = None if params is None else list(params)
        self.encoder_opt = None
        if self.params is not None:
            if not self.params:
                raise ValueError("MIPenalty: params is empty (pass the encoder's parameters)")
            if update == "adam":
                if not (math.isfinite(self.lr) and self.lr > 0):
                    raise ValueError(f"MIPenalty: lr must be a finite number > 0, got {lr}")
                self.encoder_opt = torch.optim.Adam(self.params, lr=self.lr * self._lambda)
        self.conditional = conditional
        self.clip = clip
        self.critic_steps = critic_steps
        self.estimator = make_estimator(
            estimator, z_dim, c_dim, hidden=critic_hidden, layers=critic_layers, generator=generator
        )
        self.critic_opt = torch.optim.Adam(self.estimator.parameters(), lr=critic_lr)
        self.recent: deque = deque(maxlen=buffer + 1)
        self.critic_batch = critic_batch
        self.normalize = normalize
        self.floor = floor
        self.generator = generator
        self.z_dim, self.c_dim = int(z_dim), int(c_dim)
        self.check_finite = check_finite
        self.register_buffer("z_mean", torch.zeros(z_dim))
        self.register_buffer("z_var", torch.ones(z_dim))
        self.register_buffer("stats_started", torch.zeros((), dtype=torch.bool))
        self._started = False  # host copy of stats_started: no device sync per update
        self.last_estimate = torch.tensor(float("nan"))
        self._warned_few = False  # the Gaussian term's warning about too few samples, once

    @property
    def lambda_(self) -> float:
        """The penalty's weight (a finite number >= 0)."""
        return self._lambda

    @lambda_.setter
    def lambda_(self, value: float) -> None:
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"lambda_ must be a finite number >= 0, got {value}")
        self._lambda = float(value)
        if self.encoder_opt is not None:
            for group in self.encoder_opt.param_groups:
                group["lr"] = self.lr * self._lambda

    def check_inputs(self, z: torch.Tensor, c: torch.Tensor, y: torch.Tensor | None = None):
        """Raise ValueError unless z, c (and y) are what the penalty can use (see class doc).
        Called by every public method before any state changes."""
        for name, t, width in (("z", z, self.z_dim), ("c", c, self.c_dim)):
            if not isinstance(t, torch.Tensor):
                raise ValueError(f"MIPenalty: {name} must be a tensor, got {type(t).__name__}")
            if t.dtype != torch.float32:
                raise ValueError(
                    f"MIPenalty: {name} must be float32, got {t.dtype} (pass {name}.float())"
                )
            if t.ndim != 2 or t.shape[1] != width:
                raise ValueError(
                    f"MIPenalty: {name} must have shape (N, {width}), got {tuple(t.shape)}"
                )
        if y is not None and (
            not isinstance(y, torch.Tensor) or y.ndim != 1 or y.is_floating_point()
        ):
            raise ValueError("MIPenalty: y must be a 1-d tensor of integer class labels")
        if len(z) != len(c) or (y is not None and len(y) != len(z)):
            lengths = f"z {len(z)}, c {len(c)}" + ("" if y is None else f", y {len(y)}")
            raise ValueError(f"MIPenalty: z, c and y must have the same length, got {lengths}")
        if len(z) == 0:
            raise ValueError("MIPenalty: z and c are empty")
        if self.conditional and y is None:
            raise ValueError("a conditional MIPenalty needs the labels: call it with y=...")
        if self.check_finite:
            ok = torch.isfinite(z.detach()).all() & torch.isfinite(c).all()
            if not bool(ok):
                bad = "z" if not bool(torch.isfinite(z.detach()).all()) else "c"
                raise ValueError(
                    f"MIPenalty: {bad} holds NaN or inf; the batch was refused and the "
                    "penalty's state is unchanged"
                )

    def get_extra_state(self) -> dict:
        """Saved with `state_dict`: the critic's optimiser, the host flag of the running
        statistics and the recent z kept for the critic (so a restored penalty continues
        exactly where the saved one stopped)."""
        return {
            "critic_opt": self.critic_opt.state_dict(),
            "encoder_opt": None if self.encoder_opt is None else self.encoder_opt.state_dict(),
            "started": self._started,
            "recent": [
                tuple(t.detach().cpu() if t is not None else None for t in r) for r in self.recent
            ],
        }

    def set_extra_state(self, state: dict) -> None:
        self.critic_opt.load_state_dict(state["critic_opt"])
        if self.encoder_opt is not None and state.get("encoder_opt") is not None:
            self.encoder_opt.load_state_dict(state["encoder_opt"])
        self._started = bool(state["started"])
        dev = self.z_mean.device
        self.recent = deque(
            (tuple(t.to(dev) if t is not None else None for t in r) for r in state["recent"]),
            maxlen=self.recent.maxlen,
        )

    @torch.no_grad()
    def update_stats(self, z: torch.Tensor, momentum: float = 0.1) -> None:
        """Running mean/variance of z (the first call sets them)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(
                f"MIPenalty: z must have shape (N, {self.z_dim}), got {tuple(z.shape)}"
            )
        mean, var = z.mean(0), z.var(0, unbiased=False)
        if not self._started:
            self._started = bool(self.stats_started)  # one read, e.g. after load_state_dict
        if not self._started:
            self.z_mean.copy_(mean)
            self.z_var.copy_(var)
            self.stats_started.fill_(True)
            self._started = True
        else:
            self.z_mean.lerp_(mean, momentum)
            self.z_var.lerp_(var, momentum)

    def _scale(self, z: torch.Tensor) -> torch.Tensor:
        if not self.normalize:
            return z
        return (z - self.z_mean) / torch.sqrt(self.z_var + 1e-5)

    def _given(self, y: torch.Tensor | None):
        if not self.conditional:
            return nullcontext()
        if y is None:
            raise ValueError("a conditional MIPenalty needs the labels: call it with y=...")
        return self.estimator.conditioned_on(y)

    def estimate(self, z: torch.Tensor, c: torch.Tensor, y: torch.Tensor | None = None):
        """The estimate of I(z; c) (or I(z; c | y)) on this minibatch, differentiable in z."""
        self.check_inputs(z, c, y)
        return self._estimate(z, c, y)

    def _estimate(self, z, c, y=None):
        with self._given(y):
            return self.estimator(self._scale(z), c)

    def _gaussian(self, z, c, y, kept):
        """`gaussian` times the closed-form Gaussian MI (conditioned on y if conditional)
        over this batch and the `kept` recent ones (detached: the gradient reaches the
        encoder through this batch only; the covariances of a 64-wide z need more samples
        than one batch)."""
        zs = torch.cat([z, *(r[0] for r in kept)])
        cs = torch.cat([c, *(r[1] for r in kept)])
        if len(kept) == self.recent.maxlen - 1 and not self._warned_few:
            wide = self.z_dim + self.c_dim
            if len(zs) < 8 * wide:
                self._warned_few = True
                warnings.warn(
                    f"MIPenalty: the Gaussian term sees {len(zs)} samples (the batch and "
                    f"{len(kept)} kept) for z and c {wide} wide together; below 8 x that "
                    f"({8 * wide}) its log-determinants reward a z collapsed onto fewer "
                    "directions: raise buffer or the batch size",
                    stacklevel=3,
                )
        given = None
        if self.conditional and y is not None:
            ys = torch.cat([y, *(r[2] for r in kept)])
            given = nn.functional.one_hot(ys.long()).to(z.dtype)
        return self.gaussian * gaussian_mi(zs, cs, given)

    def gaussian_term(
        self, z: torch.Tensor, c: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`gaussian` times the closed-form Gaussian MI of this batch and the kept recent
        ones (a zero tensor when `gaussian` is 0), differentiable in z: add it to your task
        loss before that loss's backward and call ``step(..., gaussian_in_loss=True)``, and
        the term's gradient comes from that backward instead of one of its own in `step`
        (one backward through the encoder fewer). The MI gradient is then clipped to the
        gradient of the task loss with the term in it. Call it before `step` (which adds
        this batch to the kept ones)."""
        self.check_inputs(z, c, y)
        if self.gaussian == 0:
            return z.new_zeros(())
        return self._gaussian(z, c, y, list(self.recent))

    def critic_step(self, z: torch.Tensor, c: torch.Tensor, y: torch.Tensor | None = None):
        """One update of T on detached z (and of the running statistics of z)."""
        self.check_inputs(z, c, y)
        self._critic_step(z, c, y)

    def _critic_step(self, z, c, y=None) -> None:
        if self.normalize:
            self.update_stats(z)
        with self._given(y):
            loss = self.estimator.loss(self._scale(z.detach()), c)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()

    def train_critic(self, z, c, y=None, steps: int | None = None) -> None:
        """`steps` updates of T, each on `critic_batch` samples drawn from this minibatch and
        the recent ones kept (z detached: T's training never reaches the encoder)."""
        self.check_inputs(z, c, y)
        self._train_critic(z, c, y, steps)

    def _train_critic(self, z, c, y=None, steps: int | None = None) -> None:
        z = z.detach()
        self.recent.append((z, c, y))
        zs = torch.cat([r[0] for r in self.recent])
        cs = torch.cat([r[1] for r in self.recent])
        ys = None if y is None else torch.cat([r[2] for r in self.recent])
        n = len(zs)
        # Draw on the generator's device (a CUDA generator keeps the draws on the GPU).
        gen_dev = self.generator.device if self.generator is not None else zs.device
        for _ in range(self.critic_steps if steps is None else steps):
            if n <= self.critic_batch:
                self._critic_step(zs, cs, ys)
                continue
            i = torch.randint(0, n, (self.critic_batch,), generator=self.generator, device=gen_dev)
            i = i.to(zs.device)
            self._critic_step(zs[i], cs[i], None if ys is None else ys[i])

    def step(
        self,
        z: torch.Tensor,
        c: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        reduce: Callable[[list[torch.Tensor | None]], None] | None = None,
        gaussian_in_loss: bool = False,
    ) -> torch.Tensor:
        """The encoder's MI step, then T's training; returns the estimate I_hat (detached).

        Call it after the task loss's backward (with ``retain_graph=True``, as z's graph is
        used again) and before your optimiser's step. It estimates I(z; c) with the current
        T, takes dI_hat/d(param) for every tensor in `params` (given at construction),
        rescales each to at most the norm of the task gradient in that tensor's ``.grad``
        (with `clip`), and either applies one Adam step with lr x lambda_ (update="adam":
        its own optimiser, so the MI update has its own scale, as in the authors' separate
        MI step; ``.grad`` is left holding the task gradient for your optimiser) or adds
        lambda_ times the clipped gradient to ``.grad`` (update="add": your optimiser's
        step then descends both). With `floor`, nothing is done to the encoder
        when I_hat <= 0. Then T trains on the detached z, as `train_critic` (with
        `critic_first`, T trains first and the estimate comes after). `reduce`, if
        given, is called on the list of MI gradients before they are clipped and may change
        them in place (over several processes: average them, as midebias.distributed does);
        with `gaussian`, on that term's gradients too. `gaussian_in_loss`: the task loss
        whose gradient is in ``.grad`` already holds `gaussian_term` (see there), so `step`
        does not add the term's gradient again.

            ce.backward(retain_graph=True)
            penalty.step(z, c)
            optimiser.step()
        """
        if self.params is None:
            raise ValueError(
                "MIPenalty.step needs the encoder's parameters: MIPenalty(..., params="
                "encoder.parameters())"
            )
        self.check_inputs(z, c, y)
        own_term = self.gaussian > 0 and not gaussian_in_loss
        kept = list(self.recent) if own_term else []  # before this batch joins
        if self.critic_first and self.critic_steps:
            self._train_critic(z, c, y)
        mi = self._estimate(z, c, y)
        value = mi.detach()
        self.last_estimate = value
        linear = None
        if own_term:  # taken before the MI step moves the encoder
            extra = self._gaussian(z, c, y, kept)
            linear = list(
                torch.autograd.grad(extra, self.params, retain_graph=True, allow_unused=True)
            )
            if reduce is not None:
                reduce(linear)  # averaged over processes, as the MI gradient is
        if self.lambda_ > 0 and not (self.floor and float(value) <= 0):
            task = [p.grad for p in self.params]
            if self.clip and any(g is None for g in task):
                raise ValueError(
                    "MIPenalty.step clips the MI gradient to the task gradient: call "
                    "task_loss.backward(retain_graph=True) before it (or clip=False)"
                )
            grads = list(torch.autograd.grad(mi, self.params, allow_unused=True))
            if reduce is not None:
                reduce(grads)
            if self.clip:
                grads = [
                    g if g is None else clip_to_reference(g, t.norm())
                    for g, t in zip(grads, task, strict=True)
                ]
            if self.update == "add":
                for p, g, t in zip(self.params, grads, task, strict=True):
                    if g is None:
                        continue
                    if t is None:
                        p.grad = self.lambda_ * g
                    elif self.no_uphill:
                        p.grad = add_without_climbing(t, self.lambda_ * g)
                    else:
                        p.grad = t + self.lambda_ * g
            else:
                for p, g in zip(self.params, grads, strict=True):
                    p.grad = g
                self.encoder_opt.step()
                for p, t in zip(self.params, task, strict=True):
                    p.grad = t  # the task gradient again, for the caller's optimiser
        if linear is not None:  # joins the gradient the caller's optimiser steps on
            for p, g in zip(self.params, linear, strict=True):
                if g is not None:
                    p.grad = g if p.grad is None else p.grad + g
        if self.critic_steps and not self.critic_first:
            self._train_critic(z, c, y)
        return value

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor,
        *,
        y: torch.Tensor | None = None,
        task_loss: torch.Tensor | None = None,
        train_critic: bool = True,
    ) -> torch.Tensor:
        """Train T (unless train_critic=False), then return the penalty term for the loss."""
        self.check_inputs(z, c, y)
        kept = list(self.recent) if self.gaussian > 0 else []  # before this batch joins
        if train_critic and self.critic_steps:
            self._train_critic(z, c, y)
        mi = self._estimate(z, c, y)
        self.last_estimate = mi.detach()
        linear = self._gaussian(z, c, y, kept) if self.gaussian > 0 else 0.0
        if self.lambda_ == 0:
            return mi.detach() * 0.0 + linear
        (g_mi,) = torch.autograd.grad(mi, z, retain_graph=True)
        if self.clip and task_loss is not None:
            (g_task,) = torch.autograd.grad(task_loss, z, retain_graph=True)
            g_mi = clip_to_reference(g_mi, g_task.norm())
        value = mi.detach()
        if self.floor:  # max(I_hat, 0) as a mask, not an `if`: no device sync per step
            gate = (value > 0).to(z.dtype)
            g_mi, value = g_mi * gate, value * gate
        # Value lambda_ * I_hat, gradient w.r.t. z lambda_ * (clipped) dI/dz; T gets no gradient
        # (plus the Gaussian term as it is).
        surrogate = (z * g_mi.detach()).sum()
        return self.lambda_ * (value + surrogate - surrogate.detach()) + linear
