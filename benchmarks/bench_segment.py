"""Wall time and peak memory of ``ssimnet segment`` as a user runs it: start-up included.

Usage::

    python benchmarks/bench_segment.py [--model CKPT] [--profile cpu] [--images 1 10 100] [--workers 1 2]
                                       [--region 4000] [--source IMAGE.png] [--normalize MODE] [--mpp MPP]

Each case runs ``ssimnet segment`` in a fresh process on copies of a 1000×1000
tile (``--source``, default a synthetic tile) and prints one table row: images,
workers, wall seconds, seconds per image and the peak resident memory of the
largest process.  ``--region N`` also segments one N×N region (the tile
repeated) in a single process, tile by tile.  Without ``--model``, the
command's default, the network shipped in the package, is used.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ssimnet.data import read_image, write_image
from ssimnet.synthetic import synthetic_tile


def _run(inputs: list[Path], out: Path, model: str, profile: str, workers: int, extra: list[str]) -> tuple[float, float]:
    command = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "ssimnet.cli", "segment", *map(str, inputs),
               "--out", str(out), *(["--model", model] if model else []), "--profile", profile, "--finetune-epochs", "0", "--workers", str(workers), "--quiet", "--overwrite", *extra]
    start = time.perf_counter()
    done = subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    return wall, int(done.stderr.strip().splitlines()[-1]) / 1024  # GNU time: peak RSS (KB) of the largest process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--images", type=int, nargs="*", default=[1, 10])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--region", type=int, default=0, help="also one region of this side (pixels)")
    parser.add_argument("--source", default="", help="a 1000x1000 RGB tile (default: synthetic)")
    parser.add_argument("--normalize", choices=["auto", "on", "off"], default=None,
                        help="passed on to ssimnet segment (default: the network's)")
    parser.add_argument("--mpp", default=None,
                        help="passed on to ssimnet segment (default: none given, the pixel-size check measures it)")
    args = parser.parse_args()
    extra = ([] if args.normalize is None else ["--normalize", args.normalize]) + (
        [] if args.mpp is None else ["--mpp", args.mpp])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = args.model
        tile = read_image(args.source) if args.source else synthetic_tile((1000, 1000), seed=0).image
        print("| images | workers | wall (s) | s per image | peak RSS, largest process (MB) |")
        print("|---:|---:|---:|---:|---:|")
        for n in args.images:
            paths = []
            for i in range(n):
                paths.append(root / "in" / f"img{i:03d}.png")
                write_image(paths[-1], tile)
            for workers in args.workers if n > 1 else [1]:
                wall, peak = _run([root / "in"] if n > 1 else paths, root / f"out{n}_{workers}", model, args.profile,
                                  workers, extra)
                print(f"| {n} | {workers} | {wall:.1f} | {wall / n:.1f} | {peak:.0f} |", flush=True)
            for p in paths:
                p.unlink()
        if args.region:
            reps = -(-args.region // tile.shape[0])
            region = np.tile(tile, (reps, reps, 1))[: args.region, : args.region]
            path = root / "region" / "region.png"
            write_image(path, region)
            del region
            wall, peak = _run([path], root / "region_out", model, args.profile, 1, extra)
            print(f"| region {args.region}×{args.region} | 1 | {wall:.1f} | – | {peak:.0f} |", flush=True)


if __name__ == "__main__":
    main()
