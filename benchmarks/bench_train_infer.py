"""Training throughput and inference time of the profiles' networks on this machine.

Usage: python benchmarks/bench_train_infer.py [--device cpu|cuda] [--profiles smoke cpu paper]

For each profile's U-Net: training patches per second (256x256 patches,
the profile's batch size, Eq. 5 loss, Adam step; median over timed steps after
warm-up), in channels_last (what the Trainer uses) and in the default
contiguous memory format, and seconds to predict one 1000x1000 image with overlapping tiles
(median of 3).  Untrained weights: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ssimnet.config import get_profile
from ssimnet.net.train import Trainer, ssimnet_loss
from ssimnet.predict import predict_probability


def _train_rate(trainer: Trainer, batch: int, steps: int, memory_format: torch.memory_format = torch.channels_last) -> float:
    trainer.model.to(memory_format=memory_format)
    x = torch.rand(batch, 3, 256, 256, device=trainer.device).contiguous(memory_format=memory_format)
    y = torch.rand(batch, 1, 256, 256, device=trainer.device)
    z = torch.randint(0, 3, (batch, 256, 256), device=trainer.device)
    times = []
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=trainer.device.type == "cuda")
    for i in range(steps + 2):
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with autocast:
            logits = trainer.model(x)
        loss = ssimnet_loss(logits, y, z).total
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return batch / float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--profiles", nargs="+", default=["smoke", "cpu", "paper"])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    image = np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'profile':<8}{'device':>8}{'depth':>6}{'width':>6}{'params':>12}{'train patches/s':>17}"
          f"{'(contiguous)':>14}{'infer s/1000²':>15}")
    for name in args.profiles:
        profile = get_profile(name)
        trainer = Trainer.new(profile.train, seed=0, device=args.device)
        plain = _train_rate(trainer, profile.train.batch_size, args.steps, torch.contiguous_format)
        rate = _train_rate(trainer, profile.train.batch_size, args.steps)  # channels_last, as Trainer uses
        times = []
        for _ in range(3):
            start = time.perf_counter()
            predict_probability(trainer.model, image, tile=256, overlap=profile.inference.tile_overlap, device=trainer.device)
            times.append(time.perf_counter() - start)
        params = sum(p.numel() for p in trainer.model.parameters())
        print(f"{name:<8}{trainer.device.type:>8}{profile.train.depth:>6}{profile.train.width:>6}{params:>12,}"
              f"{rate:>17.1f}{plain:>14.1f}{np.median(times):>15.2f}")


if __name__ == "__main__":
    main()
