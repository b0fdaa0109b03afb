# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# (chapter-02_candidates)=
# # Candidate nuclei and soft labels
#
# Paper Sec. 2.1, on the training images and without any annotation:
#
# 1. **{term}`Stain separation`** (Eq. 1–2): optical density $V = \log(I_0/I) = WH$,
#    factorised per image with Vahadane's sparse NMF
#    ({py:obj}`ssimnet.pseudo.stain.VahadaneSeparator`); the hematoxylin-only image is
#    $I^T = I_0 \exp(-W[:,0]\,H[0,:])$ ({py:obj}`ssimnet.pseudo.stain.hematoxylin_image`).
# 2. **{term}`Candidates`** (Eq. 3): $I^T$ in CIELAB, fuzzy c-means with two clusters,
#    then a morphological Chan–Vese active contour as the smoothing step
#    ({py:obj}`ssimnet.pseudo.candidates`).
# 3. **Softening** (Eq. 4): each candidate is eroded ring by ring; the rim gets
#    $B[0] = 0.5$ and ring $k+1$ gets $B[k] + P[k]/(2A)$, until $B > 0.975$
#    ({py:obj}`ssimnet.pseudo.soften.soften_labels`).
#
# All stages run through {py:obj}`ssimnet.runs.pipeline.build_pseudo_labels`, which caches each
# image's result in the run directory; the next chapter reuses it.
#
# ```{admonition} In this chapter
# :class: tip
# - **You will learn** how the paper turns an H&E image into candidate nuclei
#   without annotations: stain separation (Eq. 1-2), fuzzy c-means and an
#   active contour (Eq. 3), and softened labels (Eq. 4); and how good those
#   candidates are against the annotations.
# - **It runs** the pseudo-label stages on every training image (cached for
#   the next chapters), and scores the candidates.
# - **Time:** {glue:md}`chapter_time`.
# ```

# %% tags=["parameters"]
data_dir = ""  # dataset root in the uniform layout, empty for synthetic data
run_dir = "runs/smoke"
profile = "smoke"
seed = 0
device = ""
workers = 2  # worker processes of the pseudo-label stage


# %% tags=["remove-cell"]
from IPython.display import Markdown
from myst_nb import glue

from ssimnet.book.guide import reference_time

glue("chapter_time", Markdown(reference_time("02_candidates", "results/cpu")), display=False)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown

from ssimnet.book import setup_chapter
from ssimnet.data import list_samples, read_image
from ssimnet.pseudo.stain import RUIFROK_HE
from ssimnet.runs.evaluate import pseudo_label_quality
from ssimnet.runs.pipeline import build_pseudo_labels
from ssimnet.runs.store import load_pseudo_labels
from ssimnet.tool.viz import outline_overlay

chapter = setup_chapter(data_dir=data_dir, run_dir=run_dir, profile=profile, seed=seed, device=device, workers=workers)
config, data_root = chapter.profile, chapter.data_root
labels = build_pseudo_labels(data_root, run_dir, config.pseudo, split="train", seed=seed, workers=chapter.workers, progress=False)
print(f"pseudo labels of {len(labels.names)} training images ({data_root.name}), profile {profile!r}, seed {seed}")

# %% [markdown]
# ## Every stage on one image
#
# {numref}`fig-candidates-stages`: A 300×300 crop of the first training image: the RGB tile, its hematoxylin
# reconstruction $I^T$, the fuzzy c-means nucleus cluster, the candidates $P$
# after the active contour and clean-up, and the soft label.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Every pseudo-label stage on a crop of the first training image: the tile, I^T, the FCM cluster, the candidates P and the soft label.", "name": "fig-candidates-stages"}}
name = labels.names[0]
image = read_image(labels.images[0])
result = load_pseudo_labels(labels.path(name))
crop = (slice(0, 300), slice(0, 300))
panels = [
    ("image $I$", image[crop], None),
    ("hematoxylin $I^T$ (Eq. 2)", result.hematoxylin[crop], None),
    ("fuzzy c-means", result.fcm[crop], "gray"),
    ("candidates $P$ (Eq. 3)", outline_overlay(image[crop], result.candidates[crop].astype(int)), None),
    ("soft label (Eq. 4)", result.soft[crop], "magma"),
]
fig, axes = plt.subplots(1, 5, figsize=(16, 3.6))
for ax, (title, picture, cmap) in zip(axes, panels):
    shown = ax.imshow(picture, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None)
    ax.set_title(title, fontsize=10)
    ax.axis("off")
fig.colorbar(shown, ax=axes[-1], fraction=0.046)
plt.show()

# %% [markdown]
# ## Estimated stains
#
# {numref}`fig-candidates-stains`: The stain colours found for each training
# image (unit optical-density vectors, drawn as the colour each stain gives
# at one density), and their angle to the Ruifrok–Johnston reference.
# Hematoxylin is the atom with the larger red optical density.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Each training image's hematoxylin (H) and eosin (E) colours as estimated (top), and their angle to the Ruifrok-Johnston reference (bottom).", "name": "fig-candidates-stains"}}
estimates = [load_pseudo_labels(labels.path(name)) for name in labels.names]
stains = np.stack([e.stains for e in estimates])  # (images, 2 stains, RGB)
angles = np.degrees(np.arccos(np.clip((stains * RUIFROK_HE).sum(-1), -1, 1)))
fig, (swatches, spread) = plt.subplots(2, 1, figsize=(9, 4.2), sharex=True, gridspec_kw={"height_ratios": [1, 2]})
swatches.imshow(np.exp(-stains.transpose(1, 0, 2)), aspect="auto", extent=(-0.5, len(stains) - 0.5, 1.5, -0.5))
swatches.set_yticks([0, 1], ["H", "E"])
swatches.set_title("stain colours at optical density 1, one column per image", fontsize=10)
for k, (stain, colour) in enumerate((("hematoxylin", "#4b2c83"), ("eosin", "#d6619a"))):
    spread.scatter(range(len(stains)), angles[:, k], color=colour, label=stain, s=18)
spread.set_ylabel("angle to reference (deg)")
spread.set_xlabel(f"{len(stains)} training images")
spread.set_xticks([])
spread.legend(fontsize=9)
plt.show()

# %% tags=["remove-input"]
fallbacks = sum(e.stain_fallback for e in estimates)
Markdown(f"Median angle to the reference: {np.median(angles[:, 0]):.1f}° for hematoxylin and "
         f"{np.median(angles[:, 1]):.1f}° for eosin. {fallbacks} of {len(estimates)} images fell back to the reference "
         "matrix (too little tissue, or two stain colours too alike).")

# %% [markdown]
# ## How good are the candidates?
#
# {numref}`fig-candidates-quality`: Ground truth is read here only to *evaluate* the {term}`pseudo labels <Pseudo labels>`. The table is
# the mean over training images of pixel precision, recall and Dice of the
# FCM cluster and of the candidates $P$; for $P$ also AJI and PQ, taking each
# connected component as one nucleus.

# %%
per_image, per_patch = pseudo_label_quality(data_root, labels)
summary = pd.DataFrame(
    {
        "fuzzy c-means": [per_image.fcm_precision.mean(), per_image.fcm_recall.mean(), per_image.fcm_dice.mean(), np.nan, np.nan],
        "candidates P": [per_image.precision.mean(), per_image.recall.mean(), per_image.dice.mean(), per_image.aji.mean(), per_image.pq.mean()],
    },
    index=["precision", "recall", "Dice", "AJI", "PQ"],
).T
summary.style.format(precision=3, na_rep="–")

# %% [markdown]
# – : the fuzzy c-means map is not cut into nuclei, so it has no AJI or PQ.

# %% tags=["remove-input"]
gain = per_image.dice - per_image.fcm_dice
Markdown(
    f"On this dataset the active contour changes the mean pixel Dice from "
    f"{per_image.fcm_dice.mean():.3f} to {per_image.dice.mean():.3f} "
    f"(better on {int((gain > 0).sum())} of {len(gain)} images). The low AJI of the candidates is "
    f"what the next chapter is about: touching nuclei merge into one candidate."
)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Quality of the candidates per training image against the ground truth (evaluation only).", "name": "fig-candidates-quality"}}
fig, ax = plt.subplots(figsize=(6, 4))
ax.scatter(per_image.fcm_dice, per_image.dice)
lims = [min(per_image.fcm_dice.min(), per_image.dice.min()) - 0.02, 1]
ax.plot(lims, lims, "k--", lw=0.8)
ax.set_xlabel("Dice of the fuzzy c-means map")
ax.set_ylabel("Dice of the candidates P")
ax.set_title("Per training image")
plt.show()

# %% [markdown]
# ## Summary
#
# - Stain separation gives each image its own hematoxylin image $I^T$;
#   {numref}`fig-candidates-stains` shows how far each image's stains lie from
#   the textbook reference.
# - Fuzzy c-means and the active contour turn $I^T$ into candidates $P$
#   ({numref}`fig-candidates-stages`); their pixel scores and AJI are in the
#   table above.
# - Softening gives the network confident centres and uncertain rims. What the
#   candidates get wrong most is touching nuclei merged into one, which the
#   next chapter's purification measures.

# %% [markdown]
# ## Exercises

# %% [markdown]
# ```{exercise-start}
# :label: ex-candidates-fuzzifier
# ```
#
# The fuzzy c-means step has one parameter, the fuzzifier $m$
# (`PseudoLabelConfig.fcm_m`, 2 in the paper). Recompute the candidates of
# the first training image with $m = 1.5$ and $m = 3$ and compare their pixel
# Dice with the ground truth. Which way does a larger $m$ move the
# candidates?
#
# ```{exercise-end}
# ```
#
# ```{solution-start} ex-candidates-fuzzifier
# :class: dropdown
# ```
#
# {py:obj}`ssimnet.pseudo.candidates.candidate_nuclei` takes the hematoxylin image
# and a configuration; {py:obj}`ssimnet.metrics.pixel_scores` gives precision,
# recall and Dice (the labels are read only to score):

# %%
import dataclasses

from ssimnet.data import read_label
from ssimnet.metrics import pixel_scores
from ssimnet.pseudo.candidates import candidate_nuclei

name = labels.names[0]
truth = read_label(next(s.label_path for s in list_samples(data_root, "train") if s.name == name))
hematoxylin = load_pseudo_labels(labels.path(name)).hematoxylin
rows = {}
for m in (1.5, config.pseudo.fcm_m, 3.0):
    mask = candidate_nuclei(hematoxylin, dataclasses.replace(config.pseudo, fcm_m=m), seed=seed)
    rows[f"m = {m}"] = dict(zip(("precision", "recall", "dice"), pixel_scores(truth, mask)))
pd.DataFrame(rows).T.round(3)

# %% [markdown]
# With two clusters the hard assignment barely depends on $m$: it changes the memberships' softness more than which cluster a pixel joins, so the candidates move little.

# %% [markdown]
# ```{solution-end}
# ```
