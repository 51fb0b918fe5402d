"""Does capturing the training step in one CUDA graph pay? Milliseconds per step of vanilla
and of mi's `balanced` step, run eagerly and replayed from a CUDA graph, for one run and for
N runs stacked with torch.func.vmap (as `midebias.training.batched` stacks them).

    python benchmarks/cuda_graphs.py --device cuda --n 1 8 32 84 \\
        --out benchmarks/results/batched/cuda-graphs.json

`--precision fp32 tf32 bf16` repeats each row with torch's defaults, with the matrix
products in TF32 (torch's `allow_tf32` for matmuls and convolutions) and with the step
under bfloat16 autocast (parameters, gradients and optimiser state stay float32): where
the stacked step is bound by arithmetic, the precision is what is left to trade.

The step is a standalone copy of the arithmetic of the library's step, written so that it
can be captured: the same networks (paper-digits encoder and head, the 3-layer critic on
[z, c]), Adam updates, and the schedule of mi's preset `balanced` (CE and MI gradients from
one forward pass, the MI gradient clipped per tensor to the CE gradient's norm and skipped
when the estimate is below 0, then 10 critic updates on 512 of the last 9 steps' detached
z, standardised with running statistics). What a graph cannot hold is changed: the floor
multiplies the MI gradient by 0 instead of skipping the Adam step (the moments still
decay), the ring of recent z is a fixed tensor shifted in place, and the random draws
(marginal partners, critic samples) are made before each step into fixed tensors, so that
the eager and the replayed step do exactly the same arithmetic. `--check` steps both
from the same start on the same draws and reports the largest parameter difference.

The numbers say what capture saves where launches dominate (tiny networks, one run); the
library's training loop is not captured (yet): this measures whether it should be.
On a CPU only the eager steps run (a check of the script itself).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

sys.path.insert(0, str(Path(__file__).parent))
from speed import machine  # noqa: E402

from midebias.estimators.critics import MLPCritic  # noqa: E402
from midebias.models import make_model  # noqa: E402
from midebias.report import format_table  # noqa: E402

B, C_DIM, CRITIC_BATCH, CRITIC_STEPS, RING = 128, 24, 512, 10, 9
PRECISIONS = ("fp32", "tf32", "bf16")


@contextlib.contextmanager
def tf32(on: bool):
    """With `on`, TF32 matrix products (matmuls and cuDNN convolutions) inside; torch's
    flags as they were after. Off leaves torch's defaults (float32 matmuls; cuDNN may use
    TF32 in convolutions, its own default)."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    if on:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


class Stepper:
    """N runs' networks (stacked), optimisers and fixed input tensors, and one training
    step over them that a CUDA graph can capture."""

    def __init__(
        self, method: str, n: int, device: torch.device, seed: int = 0, precision: str = "fp32"
    ):
        torch.manual_seed(seed)
        self.method, self.n, self.device = method, n, device
        self.precision = precision
        models = [make_model("paper-digits", 10, in_channels=3).to(device) for _ in range(n)]
        self.enc_p, self.enc_fn = _stack([m.encoder for m in models])
        self.head_p, self.head_fn = _stack([m.head for m in models])
        cuda = device.type == "cuda"
        opt_kw = {"capturable": cuda, "foreach": True}
        self.task_params = list(self.enc_p.values()) + list(self.head_p.values())
        self.opt = torch.optim.Adam(self.task_params, lr=1e-3, **opt_kw)
        g = torch.Generator(device=device).manual_seed(seed)
        self.x = torch.rand(n, B, 3, 28, 28, device=device, generator=g)
        self.y = torch.randint(0, 10, (n, B), device=device, generator=g)
        self.c = F.one_hot(torch.randint(0, 8, (n, B), device=device, generator=g), 8)
        self.c = self.c.float().repeat(1, 1, 3)  # (n, B, 24): 3 one-hot groups of 8
        if method == "vanilla":
            return
        z_dim = 64
        critics = [MLPCritic(z_dim, C_DIM).to(device) for _ in range(n)]
        self.crit_p, self.crit_fn = _stack(
            critics, call=lambda m, p, z, c: functional_call(m, p, (z, c))
        )
        self.enc_list = list(self.enc_p.values())
        self.mi_opt = torch.optim.Adam(self.enc_list, lr=1e-3, **opt_kw)
        self.crit_opt = torch.optim.Adam(list(self.crit_p.values()), lr=1e-3, **opt_kw)
        self.ring_z = torch.randn(n, RING * B, z_dim, device=device, generator=g)
        self.ring_c = self.c.repeat(1, RING, 1).clone()
        self.mean = torch.zeros(n, z_dim, device=device)
        self.var = torch.ones(n, z_dim, device=device)
        # the draws, filled before each step
        self.perm = torch.zeros(n, B, dtype=torch.long, device=device)
        self.idx = torch.zeros(CRITIC_STEPS, n, CRITIC_BATCH, dtype=torch.long, device=device)
        self.perm_c = torch.zeros_like(self.idx)
        self.gen = torch.Generator(device=device).manual_seed(seed + 1)

    def draw(self) -> None:
        """This step's random draws (outside the graph): marginal partners and critic
        samples, in place."""
        if self.method == "vanilla":
            return
        g, n, dev = self.gen, self.n, self.device
        self.perm.copy_(torch.rand(n, B, generator=g, device=dev).argsort(1))
        self.idx.copy_(torch.randint(0, RING * B, self.idx.shape, generator=g, device=dev))
        self.perm_c.copy_(torch.rand(self.idx.shape, generator=g, device=dev).argsort(2))

    def step(self) -> None:
        if self.precision != "bf16":
            return self._step()
        # no cast cache: a captured graph must not keep casts from its capture
        with torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=False):
            return self._step()

    def _step(self) -> None:
        z = self.enc_fn(self.enc_p, self.x)
        logits = self.head_fn(self.head_p, z)
        ce = F.cross_entropy(logits.flatten(0, 1), self.y.flatten(), reduction="none")
        ce = ce.view(self.n, B).mean(1)
        if self.method == "vanilla":
            grads = torch.autograd.grad(ce.sum(), self.task_params)
            _adam(self.opt, self.task_params, grads)
            return
        task = torch.autograd.grad(ce.sum(), self.task_params, retain_graph=True)
        mi = self._dv(z, self.c, self.perm)
        g_mi = torch.autograd.grad(mi.sum(), self.enc_list)
        on = (mi.detach() > 0).float()  # the floor: no MI step where the estimate is <= 0
        clipped = []
        for gm, gt in zip(g_mi, task, strict=False):  # encoder tensors come first in task
            shape = (self.n,) + (1,) * (gm.dim() - 1)
            norm_m = gm.flatten(1).norm(dim=1).view(shape)
            norm_t = gt.flatten(1).norm(dim=1).view(shape)
            scale = torch.clamp(norm_t / (norm_m + 1e-12), max=1.0) * on.view(shape)
            clipped.append(gm * scale)
        _adam(self.mi_opt, self.enc_list, clipped)
        with torch.no_grad():  # the ring of recent z: drop the oldest step, add this one
            self.ring_z.copy_(torch.cat([self.ring_z[:, B:], z.detach()], 1))
            self.ring_c.copy_(torch.cat([self.ring_c[:, B:], self.c], 1))
        crit = list(self.crit_p.values())
        for k in range(CRITIC_STEPS):
            i = self.idx[k]
            zb = torch.gather(self.ring_z, 1, i[..., None].expand(-1, -1, self.ring_z.shape[2]))
            cb = torch.gather(self.ring_c, 1, i[..., None].expand(-1, -1, C_DIM))
            with torch.no_grad():
                self.mean.lerp_(zb.mean(1), 0.1)
                self.var.lerp_(zb.var(1, unbiased=False), 0.1)
            loss = -self._dv(zb, cb, self.perm_c[k])
            _adam(self.crit_opt, crit, torch.autograd.grad(loss.sum(), crit))
        _adam(self.opt, self.task_params, task)

    def _dv(self, z, c, perm) -> torch.Tensor:
        zs = (z - self.mean[:, None]) / torch.sqrt(self.var[:, None] + 1e-5)
        c_marg = torch.gather(c, 1, perm[..., None].expand(-1, -1, C_DIM))
        joint = self.crit_fn(self.crit_p, zs, c)
        marg = self.crit_fn(self.crit_p, zs, c_marg)
        m = marg.shape[1]
        return joint.mean(1) - (torch.logsumexp(marg, 1) - math.log(m))

    def state_tensors(self) -> list[torch.Tensor]:
        """Every tensor a step reads and writes: parameters, optimiser moments and step
        counts, and (mi) the ring of recent z and the running statistics."""
        out = list(self.task_params)
        opts = [self.opt]
        if self.method != "vanilla":
            out += list(self.crit_p.values()) + [self.ring_z, self.ring_c, self.mean, self.var]
            opts += [self.mi_opt, self.crit_opt]
        for o in opts:
            for st in o.state.values():
                out += [v for v in st.values() if torch.is_tensor(v)]
        return out


def _stack(modules, call=None):
    """Stacked parameters (leaf tensors, dim 0 = run) and a function of (params, *inputs):
    vmapped for several runs, the module's own call on row 0 for one."""
    params, _ = stack_module_state(modules)
    params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    base = copy.deepcopy(modules[0]).to("meta")
    call = call or (lambda m, p, x: functional_call(m, p, (x,)))
    if len(modules) == 1:

        def one(p, *args):
            return call(base, {k: v[0] for k, v in p.items()}, *(a[0] for a in args))[None]

        return params, one
    return params, vmap(lambda p, *args: call(base, p, *args))


def _adam(opt: torch.optim.Optimizer, params, grads) -> None:
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    opt.step()


def capture(stepper: Stepper) -> torch.cuda.CUDAGraph:
    """Warm up on a side stream (as torch's docs ask), then record one step."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            stepper.draw()
            stepper.step()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        stepper.step()
    return graph


def time_steps(run_one, steps: int, cuda: bool) -> float:
    """Milliseconds per step over `steps` calls (after 3 untimed ones)."""
    for _ in range(3):
        run_one()
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        run_one()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1000 / steps


def check(
    method: str, n: int, device: torch.device, steps: int = 5, precision: str = "fp32"
) -> float:
    """Largest parameter difference after `steps` eager vs replayed steps from one start."""
    eager = Stepper(method, n, device, precision=precision)
    graphed = Stepper(method, n, device, precision=precision)
    graph = capture(graphed)  # 3 warm-up steps and the recorded one moved it on
    for _ in range(3):  # so that the eager one has optimiser state too
        eager.draw()
        eager.step()
    with torch.no_grad():  # then both start again from the same state and draws
        for a, b in zip(eager.state_tensors(), graphed.state_tensors(), strict=True):
            a.copy_(b)
    for _ in range(steps):
        eager.draw()
        eager.step()
        graphed.draw()
        graph.replay()
    torch.cuda.synchronize()
    pairs = zip(eager.state_tensors(), graphed.state_tensors(), strict=True)
    return max((a.float() - b.float()).abs().max().item() for a, b in pairs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--methods", nargs="+", default=["vanilla", "mi"], choices=["vanilla", "mi"])
    p.add_argument("--n", nargs="+", type=int, default=[1, 8, 32])
    p.add_argument("--steps", type=int, default=50, help="timed steps per measurement")
    p.add_argument("--device", default="cpu")
    p.add_argument("--check", action="store_true", help="eager vs replayed parameters (CUDA)")
    p.add_argument(
        "--precision",
        nargs="+",
        default=["fp32"],
        choices=list(PRECISIONS),
        help="fp32; tf32 (matmuls and convolutions in TF32); bf16 (bfloat16 autocast)",
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/batched/graphs-cpu.json"))
    args = p.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    rows: list[dict] = []
    for method, n, precision in itertools.product(args.methods, args.n, args.precision):
        row = {"method": method, "n": n, "precision": precision}
        with tf32(precision == "tf32"):
            try:
                st = Stepper(method, n, device, precision=precision)

                def eager(st=st):
                    st.draw()
                    st.step()

                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                row["eager_ms"] = time_steps(eager, args.steps, cuda)
                if cuda:
                    graph = capture(st)

                    def replay(st=st, graph=graph):
                        st.draw()
                        graph.replay()

                    row["graph_ms"] = time_steps(replay, args.steps, cuda)
                    row["speedup"] = row["eager_ms"] / row["graph_ms"]
                    row["peak_gpu_mib_per_run"] = torch.cuda.max_memory_allocated() / 2**20 / n
                    if args.check:
                        row["check_max_abs_diff"] = check(method, n, device, precision=precision)
                best = min(row.get("graph_ms", math.inf), row["eager_ms"])
                row["ms_per_run_step"] = best / n
            except Exception as e:  # noqa: BLE001 - record it and go on with the next row
                row["error"] = f"{type(e).__name__}: {e}"[:500]
            rows.append(row)
            print(json.dumps(row), flush=True)
            _write(args, rows)
            if cuda:
                torch.cuda.empty_cache()
    cols = ["method", "n", "precision", "eager_ms", "graph_ms", "speedup", "ms_per_run_step"]
    print(format_table(rows, cols + ["check_max_abs_diff", "peak_gpu_mib_per_run"]))
    return 0


def _write(args, rows) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        **machine(args.device),
        "batch": B,
        "critic_batch": CRITIC_BATCH,
        "critic_steps": CRITIC_STEPS,
        "steps_timed": args.steps,
    }
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
