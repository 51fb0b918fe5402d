"""Several runs trained as one batched computation: `train_batched`.

N runs of one method on one benchmark (seeds, bias strengths and the mi method's lambda_
may differ; everything else is shared) train together in one process. Their networks'
parameters are stacked along a new first dimension and every step runs the N forward and
backward passes together. On a GPU that is one computation (`torch.func.functional_call`
under `torch.func.vmap`): for small networks, whose single run cannot fill the device,
one large kernel where N runs would launch N small ones. On a CPU, where the arithmetic
and not the launches sets the cost, it is a loop over the runs with each run's own
kernels (`Stacked`), which keeps the result bit for bit the single run's.

Each run stays the run `midebias train` makes with its config (on a GPU up to float
rounding):

- `prepare` builds it (data, seeded network and method, run folder), as for one run;
- it draws its data order and its estimator's shuffles from its own generators, in the
  order the single run draws them (the method's own `sample_weights` and `start_epoch`
  are called, per run);
- its optimisers are Adam's update on its slice of the stacked tensors (`StackedAdam`,
  with its own step count and learning rate, and a mask of the runs that step);
- after every epoch the stacked state (networks, optimiser moments, the critic's running
  statistics and recent z, counters) is written back into the run's own modules, and the
  epoch is evaluated, checkpointed and logged by the code of single runs: a batched run's
  folder is a run folder like any other (and `--resume` continues it as a single run).

What batches (`check_batchable` says why not, before any work): the methods vanilla and
mi with the shared step (`step=shared`, the default) or `step=summed` and the DV
estimator, networks without BatchNorm (paper-digits, mlp), in one process.
tests/test_batched.py checks that a batched run of 3 seeds reproduces the 3 single runs.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from midebias.estimators.base import log_mean_exp
from midebias.methods.mi import PENALTY_STEPS, split_point
from midebias.models import has_batchnorm, make_model
from midebias.penalty import add_without_climbing, clip_to_reference
from midebias.training.config import TrainConfig
from midebias.training.loop import (
    Job,
    build_data,
    checkpoint_state,
    epoch_losses,
    lr_factor,
    prepare,
)
from midebias.training.run import RunDir

#: TrainConfig fields that may differ between the runs of one batch.
VARYING = ("seed", "strength")


class StackedAdam:
    """torch.optim.Adam's update (its single-tensor form) on stacked parameters: row n of
    every tensor is run n's, with its own learning rate `lr[n]` and step count. `step`
    takes the gradients and, optionally, a boolean mask of the runs that step (the others'
    parameters, moments and step counts are left as they are). `schedule(factor)` sets
    every run's rate to its initial one x factor, as `fit` does to a torch Adam's param
    groups under `lr_schedule` "cosine".

    The operations are torch's own, in place, in its order, so each row is bit for bit
    what run n's torch Adam computes: on whole stacked tensors when every run steps with
    the same learning rate and step count, row by row otherwise."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.params = list(params)
        n = len(self.params[0])
        self.lr = [float(v) for v in torch.as_tensor(lr, dtype=torch.float64).expand(n)]
        self.initial_lr: list[float] | None = None  # set by the first `schedule`
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.steps = [0] * n  # on the host, as torch's Adam reads its step count
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor], mask: torch.Tensor | None = None) -> None:
        n = len(self.steps)
        rows = list(range(n)) if mask is None else [i for i, a in enumerate(mask.tolist()) if a]
        for i in rows:
            self.steps[i] += 1
        if len(rows) == n and len(set(self.steps)) == 1 and len(set(self.lr)) == 1:
            self._update(self.params, grads, self.exp_avg, self.exp_avg_sq, 0)
            return
        for i in rows:
            self._update(
                [p[i] for p in self.params],
                [g[i] for g in grads],
                [m[i] for m in self.exp_avg],
                [v[i] for v in self.exp_avg_sq],
                i,
            )

    def schedule(self, factor: float) -> None:
        """Every run's learning rate := its initial rate x `factor` (the arithmetic of
        `fit`'s `group["initial_lr"] * factor`)."""
        if self.initial_lr is None:
            self.initial_lr = list(self.lr)
        self.lr = [v * factor for v in self.initial_lr]

    def _update(self, params, grads, exp_avgs, exp_avg_sqs, i: int) -> None:
        """torch.optim.adam._single_tensor_adam's arithmetic, for run i's step and lr."""
        b1, b2 = self.betas
        step, lr = float(self.steps[i]), self.lr[i]
        step_size = lr / (1 - b1**step)
        bias_correction2_sqrt = (1 - b2**step) ** 0.5
        for p, g, m, v in zip(params, grads, exp_avgs, exp_avg_sqs, strict=True):
            if self.weight_decay:
                g = g.add(p, alpha=self.weight_decay)
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / bias_correction2_sqrt).add_(self.eps)
            p.addcdiv_(m, denom, value=-step_size)

    def write_back(self, n: int, opt: torch.optim.Optimizer, params: Sequence[nn.Parameter]):
        """Run n's moments and step count as the state of its own torch Adam `opt` over
        `params` (the same tensors, in the same order as the stacked ones), and, once
        scheduled, its rates as `fit` leaves them in the param groups."""
        if self.initial_lr is not None:
            for group in opt.param_groups:
                group["initial_lr"], group["lr"] = self.initial_lr[n], self.lr[n]
        if self.steps[n] == 0:
            return  # never stepped: torch's Adam has no state yet either
        for p, m, v in zip(params, self.exp_avg, self.exp_avg_sq, strict=True):
            opt.state[p] = {
                "step": torch.tensor(float(self.steps[n])),
                "exp_avg": m[n].detach().clone(),
                "exp_avg_sq": v[n].detach().clone(),
            }


class Stacked:
    """N modules of one architecture as one: parameters stacked along dim 0 (leaf tensors
    that require grad), called with inputs stacked the same way.

    `vectorize`: one call for all N (vmap: a convolution becomes one grouped convolution,
    a linear layer one batched matrix product), or a loop over the N slices (the single
    run's kernels, one run after the other). The first pays where launches dominate (small
    networks on a GPU); on a CPU, where the arithmetic dominates, grouped convolutions are
    slower than the loop (benchmarks/results/batched/)."""

    def __init__(self, modules: Sequence[nn.Module], vectorize: bool = True):
        self.template = modules[0]
        self.names = [k for k, _ in self.template.named_parameters()]
        self.params = {
            k: torch.stack(
                [dict(m.named_parameters())[k].detach() for m in modules]
            ).requires_grad_(True)
            for k in self.names
        }
        self.vectorize = vectorize

        def call(params, *args):
            return functional_call(self.template, params, args)

        self._call = vmap(call)

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        if self.vectorize:
            return self._call(self.params, *args)
        # unbind: one backward node that stacks the N gradients (indexing would add N
        # full-size zero tensors)
        rows = {k: v.unbind(0) for k, v in self.params.items()}
        return torch.stack(
            [
                functional_call(self.template, {k: r[n] for k, r in rows.items()}, a)
                for n, a in enumerate(zip(*args, strict=True))
            ]
        )

    def tensors(self) -> list[torch.Tensor]:
        return [self.params[k] for k in self.names]

    @torch.no_grad()
    def write_back(self, modules: Sequence[nn.Module]) -> None:
        for n, m in enumerate(modules):
            own = dict(m.named_parameters())
            for k in self.names:
                own[k].copy_(self.params[k][n])

    def own(self, module: nn.Module) -> list[nn.Parameter]:
        """`module`'s parameters in the stacked order (for `StackedAdam.write_back`)."""
        own = dict(module.named_parameters())
        return [own[k] for k in self.names]


def shared_settings(cfg: TrainConfig) -> dict[str, Any]:
    """What the runs of one batch must share: the (resolved) config without the values
    that may differ (`VARYING`, and mi's lambda_)."""
    d = cfg.to_dict()
    for k in VARYING:
        d.pop(k)
    d["settings"] = cfg.settings
    if cfg.method == "mi":
        d["settings"] = dataclasses.replace(cfg.settings, lambda_=1.0)
    return d


def check_batchable(configs: Sequence[TrainConfig]) -> None:
    """ValueError unless the (resolved) configs can train as one batch: the same method,
    benchmark, schedule and settings (only seed, strength and mi's lambda_ may differ), a
    method and settings that batch (module doc)."""
    if not configs:
        raise ValueError("train_batched needs at least one config")
    first = configs[0]
    if first.method not in ("vanilla", "mi"):
        raise ValueError(f"batched training supports vanilla and mi, not {first.method!r}")
    if first.benchmark in ("folder", "imdb"):
        raise ValueError("batched training holds every run's data as tensors: not folder/imdb")
    if first.method == "mi":
        h = first.settings
        if h.step not in PENALTY_STEPS or h.critic_source != "recent" or h.estimator != "dv":
            raise ValueError(
                "batched mi needs step=shared or summed (the default preset's), critic_source="
                f"recent and estimator=dv; got step={h.step}, critic_source={h.critic_source}, "
                f"estimator={h.estimator}"
            )
    if first.model != "mlp" and has_batchnorm(make_model(first.model, 2, in_channels=3)):
        raise ValueError(f"--model {first.model} has BatchNorm layers: it does not batch")

    base = shared_settings(first)
    for i, cfg in enumerate(configs[1:], start=1):
        other = shared_settings(cfg)
        diff = sorted(k for k in base if base[k] != other[k])
        if diff:
            raise ValueError(
                f"run {i} differs from run 0 in {', '.join(diff)}: the runs of one batch may "
                f"differ only in {', '.join(VARYING)} and mi's lambda_"
            )


def train_batched(
    configs: Sequence[TrainConfig],
    outs: Sequence[str | Path | None] | None = None,
    *,
    overwrite: bool = False,
    labels: Sequence[str | None] | None = None,
    histories: Sequence[list[dict]] | None = None,
    vectorize: bool | None = None,
) -> list[dict[str, Any]]:
    """Train the runs of `configs` as one batched computation (module doc); return each
    run's final metrics, as `midebias.training.loop.train` would, and write run folders
    at `outs` (None entries: no folder). `histories[i]` gets run i's epoch records.
    `vectorize`: one vmapped encoder call for all runs (default: on CUDA only; `Stacked`)."""
    cfgs = [c.resolve() for c in configs]
    check_batchable(cfgs)
    outs = list(outs) if outs is not None else [None] * len(cfgs)
    labels = list(labels) if labels is not None else [None] * len(cfgs)
    if len(outs) != len(cfgs) or len(labels) != len(cfgs):
        raise ValueError("give one out (or None) and one label (or None) per config")
    named = [Path(o).resolve() for o in outs if o is not None]
    if len(set(named)) != len(named):
        raise ValueError("two runs of the batch write the same run folder")
    for out in outs:
        if out is not None:
            RunDir.check_free(out, overwrite)  # fail before the data work, not after
    # Each run's data is a pure function of its config: built in threads (numpy releases
    # the GIL), since for many runs this, not training, is most of the start-up.
    with ThreadPoolExecutor(max_workers=min(len(cfgs), os.cpu_count() or 1)) as pool:
        datas = list(pool.map(build_data, cfgs))
    jobs: list[Job] = []
    try:
        for cfg, data, out, label in zip(cfgs, datas, outs, labels, strict=True):
            jobs.append(prepare(cfg, out, data, overwrite, False, label, None))
    except BaseException:
        for job in jobs:
            if job.run:
                job.run.abandon()
        raise
    records, seconds = BatchedFit(jobs, vectorize).run(histories)
    return [job.finish(r, seconds) for job, r in zip(jobs, records, strict=True)]


class BatchedFit:
    """`fit` for several jobs at once (see the module doc)."""

    def __init__(self, jobs: Sequence[Job], vectorize: bool | None = None):
        self.jobs = list(jobs)
        self.cfg = jobs[0].cfg
        self.methods = [j.method for j in jobs]
        models = [m.model for m in self.methods]
        # Vectorised on GPUs, a loop over the runs on CPUs (Stacked).
        vectorize = self.cfg.device.startswith("cuda") if vectorize is None else vectorize
        self.vectorize = vectorize
        self.encoder = Stacked([m.encoder for m in models], vectorize)
        self.head = Stacked([m.head for m in models], vectorize)
        params = self.encoder.tensors() + self.head.tensors()
        wd = getattr(self.methods[0].settings, "weight_decay", 0.0)
        self.opt = StackedAdam(params, self.cfg.lr, weight_decay=wd)
        self.mi = self.cfg.method == "mi"
        self.steps = (
            jobs[0].splits["train"].num_batches(self.cfg.batch_size, jobs[0].setup.min_last)
        )
        if self.mi:
            self._init_mi()
        # What `fit` schedules (`Method.scheduled_optimizers`): the task's Adam and mi's
        # MI-step Adam, not the critic's.
        self.scheduled = []
        if self.cfg.lr_schedule == "cosine":
            own = self.mi_opt if self.mi else None
            self.scheduled = [self.opt, *([own] if own is not None else [])]

    def _init_mi(self) -> None:
        self.penalties = [m.penalty for m in self.methods]
        h = self.methods[0].settings
        self.h = h
        for p in self.penalties:
            est = p.estimator
            if {id(t) for t in est.parameters()} != {id(t) for t in est.critic.parameters()}:
                raise ValueError("batched mi needs an estimator whose parameters are its critic's")
        self.critic = Stacked([p.estimator.critic for p in self.penalties], self.vectorize)
        self.critic_opt = StackedAdam(self.critic.tensors(), h.critic_lr)
        lambdas = torch.tensor([m.settings.lambda_ for m in self.methods], dtype=torch.float64)
        self.lambdas = lambdas
        # The MI step's own Adam, as each run's penalty has one (step=shared); with
        # step=summed the MI gradient joins the task gradient instead.
        self.mi_opt = None
        if self.penalties[0].encoder_opt is not None:
            self.mi_opt = StackedAdam(self.encoder.tensors(), self.cfg.lr * lambdas)
        device = self.penalties[0].z_mean.device
        n = len(self.jobs)
        self.z_mean = torch.zeros(n, self.penalties[0].z_dim, device=device)
        self.z_var = torch.ones(n, self.penalties[0].z_dim, device=device)
        self.started = False
        self.recent: deque = deque(maxlen=h.buffer + 1)
        self.mi_sum = torch.zeros(n, device=device)

    # -- the epoch loop, as in `fit` -------------------------------------------------------
    def run(self, histories=None) -> tuple[list[list[dict[str, Any]]], float]:
        jobs, cfg = self.jobs, self.cfg
        weights = [
            m.sample_weights(j.splits["train"].codes, j.splits["train"].labels)
            for m, j in zip(self.methods, jobs, strict=True)
        ]

        def batches_of(i: int):
            split = jobs[i].splits["train"]
            return lambda: split.batches(
                cfg.batch_size,
                shuffle=True,
                generator=jobs[i].generator,
                weights=weights[i],
                min_last=jobs[i].setup.min_last,
            )

        epoch_batches = [batches_of(i) for i in range(len(jobs))]
        steps = self.steps
        records: list[list[dict[str, Any]]] = [[] for _ in jobs]
        train_seconds = 0.0
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            starts = [m.start_epoch(b) for m, b in zip(self.methods, epoch_batches, strict=True)]
            if self.mi:
                self.mi_sum = torch.zeros_like(self.mi_sum)
            sums: list[dict[str, Any]] = [defaultdict(float) for _ in jobs]
            for i, s in enumerate(starts):
                for k, v in s.items():
                    sums[i]["start_" + k] = v
            iters = [b() for b in epoch_batches]
            for t in range(steps):
                if self.scheduled:  # as `fit`
                    factor = lr_factor((epoch - 1) * steps + t, cfg.epochs * steps)
                    for opt in self.scheduled:
                        opt.schedule(factor)
                out = self.step([next(it) for it in iters])
                for k, v in out.items():  # v: one value per run
                    for i in range(len(jobs)):
                        sums[i][k] = sums[i][k] + v[i]
            seconds = (time.perf_counter() - t0) / len(jobs)  # each run's share
            train_seconds += seconds
            self.write_back()
            for i, job in enumerate(jobs):
                losses = epoch_losses(sums[i], steps, epoch, f" of run {i} (seed {job.cfg.seed})")
                record = {"epoch": epoch, "seconds": seconds, "losses": losses}
                record.update(job.evaluate(epoch))
                if job.best is not None:
                    job.best.update(record, job.model)
                records[i].append(record)
                if job.run:
                    job.run.save_checkpoint(
                        checkpoint_state(
                            job.method,
                            epoch,
                            job.generator,
                            job.method_generator,
                            records[i],
                            train_seconds,
                            {"config": job.cfg.to_dict()},
                            job.best,
                        )
                    )
                    job.run.log_epoch(record)
                if histories is not None:
                    histories[i].append(record)
        for job in jobs:
            if job.best is not None:
                job.best.restore(job.model)
            job.model.eval()
        return records, train_seconds

    # -- one step -----------------------------------------------------------------------
    def step(self, batches) -> dict[str, torch.Tensor]:
        x = torch.stack([b.x for b in batches])
        y = torch.stack([b.y for b in batches])
        z = z_mi = None
        if self.mi:  # as MIDebias._split_features: the MI gradient through the first k rows
            k = split_point(self.h.grad_fraction, x.shape[1])
            if k < x.shape[1]:
                za, zb = self.encoder(x[:, :k]), self.encoder(x[:, k:])
                z, z_mi = torch.cat([za, zb], dim=1), torch.cat([za, zb.detach()], dim=1)
        if z is None:
            z = z_mi = self.encoder(x)
        ce = self._per_run(F.cross_entropy, self.head(z), y)
        params = self.encoder.tensors() + self.head.tensors()
        if not self.mi:
            grads = torch.autograd.grad(ce.sum(), params)
            self.opt.step(grads)
            return {"ce": ce.detach()}
        c = torch.stack([b.c for b in batches])
        task = torch.autograd.grad(ce.sum(), params, retain_graph=True)
        linear = None
        if self.h.gaussian:  # as MIPenalty.step: the term's own backward, in active runs
            kept, terms = list(self.recent), []
            for i, (m, p) in enumerate(zip(self.methods, self.penalties, strict=True)):
                if m.delay_over() and m.settings.lambda_ > 0:
                    mine = [(r[0][i], r[1][i], r[2][i]) for r in kept]
                    terms.append(p._gaussian(z_mi[i], c[i], y[i], mine))
            if terms:
                enc = self.encoder.tensors()
                linear = torch.autograd.grad(sum(terms), enc, retain_graph=True)
        if self.h.critic_first:  # as MIPenalty.step with critic_first
            self._train_critic(z.detach(), c, y)
        mi = self._dv(z_mi, c, y)
        active = torch.tensor([m.delay_over() for m in self.methods])
        for m in self.methods:  # as MIDebias.update counts them
            m.steps_done += 1
        active = active.to(mi.device) & (self.lambdas.to(mi.device) > 0)
        if self.h.floor:
            active &= mi.detach() > 0
        if bool(active.any()):
            enc = self.encoder.tensors()
            g_mi = torch.autograd.grad(mi.sum(), enc)
            if self.h.clip:
                g_mi = [self._per_run(_clip, g, t) for g, t in zip(g_mi, task, strict=False)]
            if self.mi_opt is not None:
                self.mi_opt.step(g_mi, active)
            else:  # step=summed: lambda_ x the clipped MI gradient joins the task gradient
                task = list(task)
                lam = self.lambdas.to(device=mi.device, dtype=mi.dtype)
                for i, g in enumerate(g_mi):
                    shape = (-1,) + (1,) * (g.dim() - 1)
                    if self.h.no_uphill:  # as MIPenalty.step with no_uphill, run by run
                        new = self._per_run(add_without_climbing, task[i], lam.view(shape) * g)
                    else:
                        new = task[i] + lam.view(shape) * g
                    task[i] = torch.where(active.view(shape), new, task[i])
        if linear is not None:  # joins the gradient after the MI update, as in MIPenalty.step
            task = list(task)
            for i, g in enumerate(linear):
                task[i] = task[i] + g
        if not self.h.critic_first:
            self._train_critic(z.detach(), c, y)
        self.opt.step(task)
        self.mi_sum += mi.detach()
        return {"ce": ce.detach(), "mi": mi.detach()}

    def _per_run(self, fn, *tensors: torch.Tensor) -> torch.Tensor:
        """fn applied to each run's slice of `tensors`, stacked: vmapped, or (CPU) a loop
        that runs the single run's own operations, so that the result is bit for bit
        the single run's (Adam turns rounding differences in near-zero gradients, such as
        the critic's last bias, whose DV gradient is zero, into steps of size lr)."""
        if self.vectorize:
            return vmap(fn)(*tensors)
        return torch.stack([fn(*a) for a in zip(*tensors, strict=True)])

    # -- the penalty's parts, per run ---------------------------------------------------
    def _scale(self, z: torch.Tensor) -> torch.Tensor:
        if not self.h.normalize:
            return z
        return (z - self.z_mean[:, None]) / torch.sqrt(self.z_var[:, None] + 1e-5)

    def _perms(self, y: torch.Tensor) -> torch.Tensor:
        """Each run's marginal partners, drawn by its own estimator (its generator, and
        within classes when conditional), as the single run draws them."""
        out = []
        for p, yi in zip(self.penalties, y, strict=True):
            est, m = p.estimator, len(yi)
            if self.h.conditional:
                with est.conditioned_on(yi):
                    out.append(est._permutation(m, yi.device))
            else:
                out.append(est._permutation(m, yi.device))
        return torch.stack(out)

    def _dv(self, z, c, y) -> torch.Tensor:
        """The DV estimate per run (differentiable in z and in the critic)."""
        perm = self._perms(y)
        c_marg = torch.gather(c, 1, perm[..., None].expand(-1, -1, c.shape[2]))
        zs = self._scale(z)
        joint, marg = self.critic(zs, c), self.critic(zs, c_marg)
        return self._per_run(_dv_value, joint, marg)

    @torch.no_grad()
    def _update_stats(self, z: torch.Tensor, momentum: float = 0.1) -> None:
        mean = self._per_run(lambda t: t.mean(0), z)
        var = self._per_run(lambda t: t.var(0, unbiased=False), z)
        if not self.started:
            self.z_mean.copy_(mean), self.z_var.copy_(var)
            self.started = True
        else:
            self.z_mean.lerp_(mean, momentum), self.z_var.lerp_(var, momentum)

    def _train_critic(self, z, c, y) -> None:
        h = self.h
        self.recent.append((z, c, y))
        zs = torch.cat([r[0] for r in self.recent], dim=1)
        cs = torch.cat([r[1] for r in self.recent], dim=1)
        ys = torch.cat([r[2] for r in self.recent], dim=1)
        n = zs.shape[1]
        critic = self.critic.tensors()
        for _ in range(h.critic_steps):
            if n <= h.critic_batch:
                zb, cb, yb = zs, cs, ys
            else:
                idx = []
                for p in self.penalties:
                    gen = p.generator
                    dev = gen.device if gen is not None else zs.device
                    idx.append(torch.randint(0, n, (h.critic_batch,), generator=gen, device=dev))
                i = torch.stack(idx).to(zs.device)
                zb = torch.gather(zs, 1, i[..., None].expand(-1, -1, zs.shape[2]))
                cb = torch.gather(cs, 1, i[..., None].expand(-1, -1, cs.shape[2]))
                yb = torch.gather(ys, 1, i)
            if h.normalize:
                self._update_stats(zb)
            loss = -self._dv(zb, cb, yb)
            self.critic_opt.step(torch.autograd.grad(loss.sum(), critic))

    # -- back into each run's own modules -------------------------------------------------
    def write_back(self) -> None:
        models = [m.model for m in self.methods]
        self.encoder.write_back([m.encoder for m in models])
        self.head.write_back([m.head for m in models])
        for n, method in enumerate(self.methods):
            model = method.model
            own = self.encoder.own(model.encoder) + self.head.own(model.head)
            self.opt.write_back(n, method.opt, own)
        if not self.mi:
            return
        self.critic.write_back([p.estimator.critic for p in self.penalties])
        for n, (method, p) in enumerate(zip(self.methods, self.penalties, strict=True)):
            self.critic_opt.write_back(n, p.critic_opt, self.critic.own(p.estimator.critic))
            if self.mi_opt is not None:
                self.mi_opt.write_back(n, p.encoder_opt, self.encoder.own(method.model.encoder))
            with torch.no_grad():
                p.z_mean.copy_(self.z_mean[n]), p.z_var.copy_(self.z_var[n])
                p.stats_started.fill_(self.started)
            p._started = self.started
            p.recent = deque(
                ((z[n], c[n], y[n]) for z, c, y in self.recent), maxlen=p.recent.maxlen
            )
            method.mi_sum, method.mi_count = self.mi_sum[n].clone(), self.steps


def _clip(g: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """One run's MI gradient of one tensor, rescaled to norm min(||g||, ||ref||) (MINE's
    clipping, as MIPenalty.step does it)."""
    return clip_to_reference(g, ref.norm())


def _dv_value(joint: torch.Tensor, marg: torch.Tensor) -> torch.Tensor:
    """One run's DV estimate from its critic scores (as DVEstimator computes it)."""
    return joint.mean() - log_mean_exp(marg)
