"""Pixel size study: ``ssimnet segment`` on MoNuSeg test images rescanned, in effect, at 20x and 60x, with and without ``--mpp``.

Writes ``results/cpu/resolution_per_image.csv`` and its provenance
(:data:`ssimnet.book.results.RESOLUTION`).  Each MoNuSeg test image (40x, about
:data:`ssimnet.config.NETWORK_MPP` um per pixel) and its labels are resampled
to the pixel size of another scan (:func:`ssimnet.tool.resample.rescale_image`,
:func:`ssimnet.tool.resample.resize_labels`); ``ssimnet segment`` then runs on them
as a user runs it, with the given network and the tool's defaults, once as
they are and once told their pixel size.  Nothing is chosen here: ``--mpp``
states a fact about the scan.

    python studies/resolution.py CHECKPOINT --monuseg DIR --run-dir runs/study --out results/cpu
"""

from __future__ import annotations

import pandas as pd
from _common import network_record, study_parser

from ssimnet.book.results import RESOLUTION, provenance, save_results
from ssimnet.cli import main as ssimnet
from ssimnet.config import NETWORK_MPP, get_profile
from ssimnet.data import list_samples, read_image, read_label, write_image, write_label
from ssimnet.metrics import score
from ssimnet.tool.resample import rescale_image, resize_labels

#: The scans simulated: name -> microns per pixel.
SCANS = {"20x": 2 * NETWORK_MPP, "60x": NETWORK_MPP * 2 / 3}
AS_IS, TOLD = "as they are", "told their pixel size (--mpp)"


def main() -> None:
    args = study_parser(__doc__).parse_args()
    profile = get_profile(args.profile)
    samples = list_samples(args.monuseg, "test")
    rows = []
    for scan, mpp in SCANS.items():
        folder = f"{args.run_dir}/resolution/{scan}"
        truth = {}
        for s in samples:
            image = rescale_image(read_image(s.image_path), NETWORK_MPP / mpp)
            truth[s.name] = resize_labels(read_label(s.label_path), image.shape[:2])
            write_image(f"{folder}/images/{s.name}.png", image)
            write_label(f"{folder}/labels/{s.name}.png", truth[s.name])
        for config, extra in ((AS_IS, []), (TOLD, ["--mpp", f"{mpp:.6g}"])):
            out = f"{folder}/{'told' if extra else 'as_is'}"
            argv = ["segment", f"{folder}/images", "--out", out, "--model", args.checkpoint, "--profile", profile.name,
                    "--seed", str(args.seed), "--quiet", "--overwrite", *extra]
            if ssimnet(argv) != 0:
                raise SystemExit(f"ssimnet {' '.join(argv)} failed")
            for s in samples:
                scores = score(truth[s.name], read_label(f"{out}/{s.name}_label.png")).as_dict()
                rows.append({"config": config, "split": f"test at {scan}", "image": s.name, "mpp": mpp, **scores})
    per_image = pd.DataFrame(rows)
    info = provenance(profile, data_dir=args.monuseg, seed=args.seed)
    info.update(network=network_record(args), scans=SCANS, network_mpp=NETWORK_MPP)
    save_results(args.out, per_image, info, kind=RESOLUTION)
    print(per_image.groupby(["split", "config"])[["dice", "aji", "pq"]].mean().mul(100).round(1).to_string())


if __name__ == "__main__":
    main()
