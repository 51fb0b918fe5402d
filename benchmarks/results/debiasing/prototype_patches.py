"""The prototype behind `summed-prototype.jsonl`: gauge runs (benchmarks/gauge.py's
`run_spec`) with three experimental changes to the mi step, patched in at run time.

Each spec line may carry "patch": {"mode": "sum"} (the clipped MI gradient added to the
CE gradient, one Adam: what became `--set step=summed`; checked bit-identical to it on one
epoch of 2,000 digits), {"beta1": B} (the MI Adam's beta1, step=shared), or {"mode": "lag",
"K": K} (one backward of CE + s * I_hat, with s = lambda_ x min(1, ||g_CE|| / ||g_MI||) over
all encoder tensors, recomputed every K steps). {"lambdas": [l0, l1, ...]} sets the
penalty's lambda_ at the start of each epoch (the last value for later epochs); it combines
with the others. {"cosine": E} scales the learning rates (the network's Adam and, through
the penalty's lr, the MI Adam) by 0.5 (1 + cos(pi e / E)) in epoch e (from 0), for mi and
vanilla alike. {"ema": D} keeps an exponential moving average (decay D per step) of the
network's weights and buffers, mi and vanilla alike, and evaluates that average at the end
of the last epoch (5: the gauge's; "ema_at" to change). {"critic_first": true} trains T on
the batch's detached z (and the buffer) before the penalty takes the estimate and its
gradient, instead of after: what became `--set critic_first=true` (checked identical to it
on one epoch of 2,000 digits); the patch now switches the penalty's own setting on.
{"clip_ref": R} clips each encoder tensor's MI gradient to R x the norm of its task gradient
instead of 1 x (with R = 1 / lambda_, lambda_ x the clipped gradient is never longer than the
task gradient, so with update="add" the summed step cannot point uphill in the task loss).
{"no_uphill": true} (with update="add") leaves the clipped MI gradient m as it is unless
the summed gradient t + m of a tensor would point uphill in the task loss (<t + m, t> < 0);
then it removes from m just enough of its component along t that <t + m, t> = 0. Steps
counted in PATCH_COUNTS (tensors seen, tensors projected). {"decay": D} replaces the
network's Adam (mi's and vanilla's) by AdamW at the same lr with decoupled weight decay D
(each step every weight shrinks by the factor 1 - lr x D, whatever its gradient).

    OMP_NUM_THREADS=1 python benchmarks/results/debiasing/prototype_patches.py SPECS OUT 0/1
"""

import json
import math
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import gauge  # noqa: E402

from midebias import penalty as P  # noqa: E402
from midebias.methods import mi as M  # noqa: E402
from midebias.methods import vanilla as V  # noqa: E402
from midebias.training import loop as L  # noqa: E402

PATCH: dict = {}
_clip = P.clip_to_reference


def clip_to_reference(grad, ref_norm):
    return _clip(grad, ref_norm * PATCH.get("clip_ref", 1.0))


P.clip_to_reference = clip_to_reference
_init, _shared = P.MIPenalty.__init__, M.MIDebias._shared_step
_start_epoch = M.MIDebias.start_epoch


def cosine(self, epoch):
    if "cosine" not in PATCH:
        return
    f = 0.5 * (1 + math.cos(math.pi * epoch / PATCH["cosine"]))
    for g in self.opt.param_groups:
        g["lr"] = self.lr * f
    pen = getattr(self, "penalty", None)
    if pen is not None and pen.encoder_opt is not None:
        pen.lr = self.lr * f
        pen.lambda_ = pen.lambda_  # the setter sets the MI Adam's lr to lr x lambda_


def start_epoch(self, batches):
    out = _start_epoch(self, batches)
    if "lambdas" in PATCH:
        lambdas = PATCH["lambdas"]
        self.penalty.lambda_ = float(lambdas[min(self.epoch, len(lambdas) - 1)])
    cosine(self, self.epoch)
    return out


def vanilla_start_epoch(self, batches):
    self._epoch = getattr(self, "_epoch", -1) + 1
    cosine(self, self._epoch)
    return {}


def init(self, *a, **kw):
    _init(self, *a, **kw)
    if self.encoder_opt is not None and PATCH.get("mode") == "sum":
        # The prototype's own copy of this step became MIPenalty(update="add"), which
        # gives the same numbers: the patch now switches the penalty to it.
        self.update, self.encoder_opt = "add", None
    if PATCH.get("critic_first"):
        self.critic_first = True  # the prototype's copy of this order became the setting
    if self.encoder_opt is not None and "beta1" in PATCH:
        for g in self.encoder_opt.param_groups:
            g["betas"] = (PATCH["beta1"], 0.999)


def shared_lag(self, batch, c, y, active):
    if PATCH.get("mode") != "lag":
        return _shared(self, batch, c, y, active)
    pen = self.penalty
    z = self.model.features(batch.x)
    ce = F.cross_entropy(self.model.head(z), y)
    mi = pen._estimate(z, c, y)
    self.opt.zero_grad(set_to_none=True)
    n = getattr(self, "_lag_n", 0)
    self._lag_n = n + 1
    loss = ce
    if active and pen.lambda_ > 0 and float(mi.detach()) > 0:
        if n % PATCH.get("K", 10) == 0 or not hasattr(self, "_lag_s"):
            gc = torch.autograd.grad(ce, self.encoder_params, retain_graph=True)
            gm = torch.autograd.grad(mi, self.encoder_params, retain_graph=True)
            nc = torch.sqrt(sum((g * g).sum() for g in gc))
            nm = torch.sqrt(sum((g * g).sum() for g in gm))
            self._lag_s = pen.lambda_ * float(torch.clamp(nc / (nm + 1e-12), max=1.0))
        loss = ce + self._lag_s * mi
    loss.backward()
    self.opt.step()
    pen._train_critic(z, c, y)
    return ce, mi.detach(), None


P.MIPenalty.__init__, M.MIDebias._shared_step = init, shared_lag
_penalty_step = P.MIPenalty.step
PATCH_COUNTS = {"tensors": 0, "projected": 0}


def penalty_step(self, z, c, y=None, *, reduce=None):
    if not PATCH.get("no_uphill") or self.update != "add":
        return _penalty_step(self, z, c, y, reduce=reduce)
    task = [None if p.grad is None else p.grad.clone() for p in self.params]
    out = _penalty_step(self, z, c, y, reduce=reduce)
    with torch.no_grad():
        for p, t in zip(self.params, task, strict=True):
            if t is None or p.grad is None:
                continue
            PATCH_COUNTS["tensors"] += 1
            m = p.grad - t
            new = P.add_without_climbing(t, m)  # the rule the setting no_uphill kept
            if not torch.equal(new, t + m):
                PATCH_COUNTS["projected"] += 1
                p.grad = new
    return out


P.MIPenalty.step = penalty_step
M.MIDebias.start_epoch = start_epoch
CURRENT: dict = {}


def with_ema(update):
    def step(self, batch):
        out = update(self, batch)
        if "ema" in PATCH:
            CURRENT["method"] = self
            d, now = PATCH["ema"], self.model.state_dict()
            if not hasattr(self, "_ema"):
                self._ema = {k: v.detach().clone() for k, v in now.items()}
            for k, v in now.items():
                if v.dtype.is_floating_point:
                    self._ema[k].mul_(d).add_(v.detach(), alpha=1 - d)
                else:
                    self._ema[k].copy_(v)
        return out

    return step


_epoch_losses = L.epoch_losses


def epoch_losses(sums, steps, epoch, run=""):
    out = _epoch_losses(sums, steps, epoch, run)
    m = CURRENT.get("method")
    if m is not None and epoch == PATCH.get("ema_at", 5):
        m.model.load_state_dict(m._ema)  # evaluate and audit the average
    return out


M.MIDebias.update = with_ema(M.MIDebias.update)
V.Vanilla.update = with_ema(V.Vanilla.update)
L.epoch_losses = epoch_losses
V.Vanilla.start_epoch = vanilla_start_epoch

_mi_init, _vanilla_init = M.MIDebias.__init__, V.Vanilla.__init__


def with_decay(init):
    def patched(self, model, **kw):
        init(self, model, **kw)
        if PATCH.get("decay"):
            self.opt = torch.optim.AdamW(
                model.parameters(), lr=self.lr, weight_decay=PATCH["decay"]
            )

    return patched


M.MIDebias.__init__ = with_decay(_mi_init)
V.Vanilla.__init__ = with_decay(_vanilla_init)

if __name__ == "__main__":
    specs_path, out, part = sys.argv[1:4]
    k, n = map(int, part.split("/"))
    specs = [json.loads(s) for s in open(specs_path) if s.strip()]
    done = {json.loads(s)["name"] for s in open(out) if s.strip()} if os.path.exists(out) else set()
    for spec in specs[k::n]:
        if spec["name"] in done:
            continue
        PATCH.clear()
        CURRENT.clear()
        PATCH.update(spec.get("patch", {}))
        record = gauge.run_spec({key: v for key, v in spec.items() if key != "patch"})
        record["patch"] = dict(PATCH)
        if PATCH.get("no_uphill"):
            record["patch_counts"] = dict(PATCH_COUNTS)
            PATCH_COUNTS.update(tensors=0, projected=0)
        with open(out, "a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"{record['name']}: test {record['test']:.3f} probe {record['probe']:.3f}")
