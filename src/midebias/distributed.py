"""Data-parallel training over several processes (torchrun): one global batch per step.

`torchrun --nproc_per_node=N -m midebias train ...` starts N copies of the command; each
finds its rank in the environment (RANK, WORLD_SIZE, LOCAL_RANK, set by torchrun) and
`setup` joins the process group (gloo on CPU, NCCL on CUDA, one GPU per process).

How a step stays the step of the single-process run (docs/distributed.md):

- Every process draws the same global order of the training split (the same seeded
  generator) and takes its contiguous shard of each global batch (`shard_sizes`).
- The encoder runs on the process's shard only; its z is all-gathered with autograd
  (`Distributed.gather`), and everything after the encoder (the head, the cross-entropy,
  the MI estimate with its shuffle, the critic's updates, the bias heads) runs on the
  whole global batch, identically in every process (same inputs, same seeded draws).
- Every gradient is then averaged over the processes (`Distributed.average`). The
  all-gather's backward sums the (identical) gradients of all processes with respect to
  each shard's z, so a process's encoder gradient is N times its shard's share of the
  global-batch gradient, and the average over processes is exactly that gradient; the
  gradients of the networks that see only gathered z (head, critic, bias heads) are the
  same in every process already, and averaging keeps them so.

The averaging is explicit (an all-reduce of the gradients before each optimiser step),
not torch's DistributedDataParallel wrapper: the wrapper's hooks average the gradients of
one `backward()` of the wrapped model's forward, while the methods also take
`torch.autograd.grad` of other losses with respect to the encoder (mi's separate MI step
with its per-tensor clipping), call the encoder several times per step (mi, LNL) and step
other networks on gathered z; one rule for all of them keeps the methods readable.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist


def shard_sizes(n: int, world_size: int) -> tuple[int, ...]:
    """How many of a global batch's `n` samples each process takes (the first `n %
    world_size` processes one more); process r takes the r-th contiguous run."""
    return tuple(n // world_size + (r < n % world_size) for r in range(world_size))


def requested() -> bool:
    """Whether this process was started as one of several (torchrun's WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Rank 0, or a single process: the one that writes files and prints."""
    return int(os.environ.get("RANK", "0")) == 0


class _AllGather(torch.autograd.Function):
    """All-gather along dim 0 with autograd: backward sums the gradient of the gathered
    tensor over the processes and returns this process's rows. (torch's own,
    torch.distributed.nn.functional.all_gather, is deprecated.)"""

    @staticmethod
    def forward(ctx, t: torch.Tensor, world_size: int, rank: int) -> torch.Tensor:
        ctx.rank, ctx.rows = rank, len(t)
        parts = [torch.empty_like(t) for _ in range(world_size)]
        dist.all_gather(parts, t)  # the list form: in every torch >= 2.1, not deprecated
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows], None, None


@dataclass(frozen=True)
class Distributed:
    """This process's place among the processes of one training run."""

    rank: int
    world_size: int
    device: torch.device
    #: Whether `setup` created the process group (then `close` destroys it).
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def gather(self, t: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
        """The rows of every process's `t` (this process holds `sizes[rank]` of them), in
        rank order: the global batch. Differentiable when `t` requires grad (the backward
        sums every process's gradient with respect to this process's rows)."""
        rows = max(sizes)
        padded = t
        if len(t) < rows:  # all_gather needs equal shapes: pad, gather, cut
            pad = t.new_zeros((rows - len(t), *t.shape[1:]))
            padded = torch.cat([t, pad])
        full = _AllGather.apply(padded.contiguous(), self.world_size, self.rank)
        return torch.cat([p[:n] for p, n in zip(full.split(rows), sizes, strict=True)])

    def average(self, tensors: Iterable[torch.Tensor | None]) -> None:
        """Replace each tensor (in place) by its mean over the processes: one all-reduce
        of all of them flattened together. None entries (no gradient) are skipped; every
        process must pass the same shapes in the same order."""
        ts = [t for t in tensors if t is not None]
        if not ts:
            return
        flat = torch.cat([t.reshape(-1) for t in ts])
        dist.all_reduce(flat)
        flat /= self.world_size
        for t, part in zip(ts, flat.split([t.numel() for t in ts]), strict=True):
            t.copy_(part.view_as(t))

    def average_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Average the `.grad` of each parameter over the processes (before a step)."""
        self.average(p.grad for p in params)

    def broadcast(self, t: torch.Tensor) -> torch.Tensor:
        """Rank 0's `t`, in every process (in place)."""
        dist.broadcast(t, src=0)
        return t

    def agree(self, t: torch.Tensor) -> bool:
        """Whether every process holds the same values in `t` (a float tensor)."""
        lo, hi = t.detach().double().clone(), t.detach().double().clone()
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        return bool(torch.equal(lo, hi))

    def barrier(self) -> None:
        if self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def setup(device: str) -> Distributed | None:
    """Join the process group of a torchrun launch (None when this is the only process).
    `device` is the run's --device: cpu uses gloo; cuda uses NCCL and the GPU numbered
    LOCAL_RANK (one GPU per process)."""
    if not requested():
        return None
    kind = torch.device(device).type
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"--device {device}: several processes need cpu (gloo) or cuda (NCCL)")
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if kind == "cuda":
        if local >= torch.cuda.device_count():
            raise ValueError(
                f"--device {device}: process {local} on this node has no GPU of its own "
                f"({torch.cuda.device_count()} here); start at most that many per node"
            )
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
        if "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(1)  # N processes share the cores
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if kind == "cuda" else "gloo")
    if dist.get_world_size() != world or dist.get_rank() != rank:
        raise RuntimeError("the process group does not match RANK/WORLD_SIZE")
    return Distributed(rank=rank, world_size=world, device=dev, owns_group=owns)
