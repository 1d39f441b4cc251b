"""Training throughput (images or videos per second) of each model family.

Synthetic tensors at each model's input size, a fixed number of optimizer
steps after warm-up, the same step the training loop runs (forward, loss,
backward, Adam step; DID through its own training_losses). Data loading is
not included: this measures the model, not the disk.

    .venv/bin/python benchmarks/train_throughput.py                      # CPU, main families
    .venv/bin/python benchmarks/train_throughput.py --device cuda --amp --batch 64 --steps 20
    .venv/bin/python benchmarks/train_throughput.py --models ldfnet meso4 --size 128
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from ddtool.models import create_model, get_spec, list_models

MAIN_FAMILIES = ("resnet26", "sfic_resnet26", "ldfnet", "meso4", "mesoinception4", "meso_cnn150", "did", "cnn3d", "gru")


def synthetic_batch(name: str, batch: int, size: int | None):
    spec = get_spec(name)
    if spec.input_kind == "image":
        side = size or spec.input_size
        return torch.randn(batch, 3, side, side), side
    if spec.input_kind in ("volume", "sequence"):
        return torch.randn(batch, *spec.input_size), spec.input_size
    raise ValueError(f"{name}: {spec.input_kind} models have no tensor training step")


def build(name: str, size: int | None):
    spec = get_spec(name)
    kwargs = {}
    if name == "did":
        kwargs = {"backbone": "sfic_resnet26", "num_domains": 4}
    if size and spec.input_kind == "image":
        try:
            return create_model(name, **kwargs, input_size=size)
        except TypeError:
            pass
    return create_model(name, **kwargs)


def measure(name: str, device: torch.device, batch: int, steps: int, warmup: int, size: int | None, amp: bool) -> tuple[float, object]:
    torch.manual_seed(0)
    model = build(name, size).to(device).train()
    x, shape = synthetic_batch(name, batch, size)
    x = x.to(device)
    if device.type == "cuda" and x.ndim == 4:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = (torch.arange(batch, device=device) % 2).long()
    domain = torch.where(y == 1, 1 + torch.arange(batch, device=device) % 4, torch.zeros_like(y))
    params = model.parameter_groups(1e-4) if hasattr(model, "parameter_groups") else model.parameters()
    optimizer = torch.optim.Adam(params, lr=1e-4)
    use_amp = amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    def step() -> None:
        with torch.autocast(device.type, enabled=use_amp):
            if hasattr(model, "training_losses"):
                loss = model.training_losses(x, y, domain, 0.5)["loss"]
            else:
                loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - started), shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="model names (default: the main families that are registered)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--size", type=int, default=None, help="image side (default: each model's own)")
    parser.add_argument("--amp", action="store_true", help="autocast + GradScaler (CUDA only)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = args.models or [m for m in MAIN_FAMILIES if m in list_models()]
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {label}; batch {args.batch}; {args.steps} timed steps after {args.warmup} warm-up; amp={args.amp and device.type == 'cuda'}")
    print(f"{'model':<16} {'input':<16} {'train items/s':>14}")
    for name in names:
        rate, shape = measure(name, device, args.batch, args.steps, args.warmup, args.size, args.amp)
        print(f"{name:<16} {str(shape):<16} {rate:>14.1f}", flush=True)


if __name__ == "__main__":
    main()
