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
# (chapter-01_data)=
# # The data
#
# This chapter shows the dataset the book runs on: a few tiles with their
# ground-truth nuclei, how many nuclei there are and how large they are per
# organ, and -- the premise of the method -- how nucleus size varies
# *between* images against *within* one image.
#
# The published book runs on MoNuSeg 2018 (the `cpu` reference run); with
# `make book PROFILE=smoke` the same chapters run on the synthetic H&E tiles
# of {py:obj}`ssimnet.synthetic` (exact ground truth, no download). Labels
# are used here only to describe the data.
#
# ```{admonition} In this chapter
# :class: tip
# - **You will learn** what the tiles and their annotated nuclei look like,
#   how many nuclei there are and how large they are per organ, and how to
#   measure the premise of the method: how much of the variation of nucleus
#   size lies between images rather than within one.
# - **It runs** nothing but reading the dataset and its labels.
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

glue("chapter_time", Markdown(reference_time("01_data", "results/cpu")), display=False)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown

from ssimnet.book import setup_chapter
from ssimnet.data import SPLITS, list_samples, nucleus_statistics, read_sample
from ssimnet.tool.viz import outline_overlay

chapter = setup_chapter(data_dir=data_dir, run_dir=run_dir, profile=profile, seed=seed, device=device, workers=workers)
data_root = chapter.data_root
stats = nucleus_statistics(data_root)
n_images = stats.groupby("split")["image"].nunique()
print(f"profile {profile!r}; dataset {data_root.name}: "
      + ", ".join(f"{split} {n_images.get(split, 0)} images" for split in SPLITS)
      + f"; {len(stats):,} nuclei in all")

# %% [markdown]
# ## Sample tiles
#
# {numref}`fig-data-tiles`: Ground-truth nuclei outlined in green, three tiles from each split. Each
# panel shows the top-left 400×400 pixels at full resolution.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Ground-truth nuclei (green outlines) on three tiles of each split, top-left 400×400 pixels.", "name": "fig-data-tiles"}}
crop = 400
fig, axes = plt.subplots(2, 3, figsize=(12, 8.4))
for row, split in zip(axes, SPLITS):
    samples = list_samples(data_root, split)
    picks = [samples[i] for i in np.linspace(0, len(samples) - 1, 3).round().astype(int)]
    for ax, sample in zip(row, picks):
        image, label = read_sample(sample)
        ax.imshow(outline_overlay(image[:crop, :crop], label[:crop, :crop]))
        organ = stats.loc[stats.image == sample.name, "organ"].iloc[0]
        ax.set_title(f"{split}: {sample.name[:23]}\n{organ}, {label.max()} nuclei in the tile", fontsize=9)
        ax.axis("off")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Nuclei per organ
#
# The table counts images and nuclei per organ, with their median area and
# equivalent-circle diameter in pixels (MoNuSeg is scanned at 40×, about
# 0.25 µm per pixel); {numref}`fig-data-sizes` shows every nucleus's area.

# %%
table = (
    stats.groupby(["split", "organ"])
    .agg(
        images=("image", "nunique"),
        nuclei=("nucleus", "size"),
        median_area_px=("area", "median"),
        median_diameter_px=("diameter", "median"),
    )
    .assign(nuclei_per_image=lambda t: (t.nuclei / t.images).round(0).astype(int))
    .round(1)
)
table.rename(columns=lambda c: c.replace("_px", " (px)").replace("_", " "))  # headers that wrap to fit the column

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Nucleus size per organ: the area of every ground-truth nucleus (log scale).", "name": "fig-data-sizes"}}
fig, ax = plt.subplots(figsize=(9, 3.8))
bins = np.logspace(np.log10(max(stats.area.min(), 1)), np.log10(stats.area.max()), 50)
for organ, group in stats.groupby("organ"):
    ax.hist(group.area, bins=bins, histtype="step", density=True, label=f"{organ} ({len(group):,})")
ax.set_xscale("log")
ax.set_xlabel("nucleus area (pixels, log scale)")
ax.set_ylabel("density")
ax.legend(fontsize=8, ncol=2)
ax.set_title("Nucleus area by organ")
plt.show()

# %% [markdown]
# ## Intra-image self similarity
#
# {numref}`fig-data-self-similarity`: The method rests on nuclei within one image resembling each other more than
# nuclei of different images. Size is the one part of that the labels let us
# measure directly. Below, each box is one image's distribution of log-area,
# sorted by median; the table gives the spread of log-area within images, the
# spread of the image medians, and the share of all variance of log-area that
# lies between images (0: images are interchangeable; 1: every image has one
# nucleus size).

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Log-area of the nuclei of each image: the spread within an image against the spread between images.", "name": "fig-data-self-similarity"}}
stats["log_area"] = np.log(stats.area)
by_image = stats.groupby("image").log_area
order = by_image.median().sort_values().index
fig, ax = plt.subplots(figsize=(11, 3.8))
ax.boxplot([stats.loc[stats.image == name, "log_area"] for name in order], showfliers=False)
ax.set_xticks([])
ax.set_xlabel(f"{len(order)} images, sorted by median nucleus area")
ax.set_ylabel("log nucleus area")
ax.set_title("Nucleus size within and between images")
plt.show()

# %%
between_share = by_image.transform("mean").var() / stats.log_area.var()
pd.DataFrame(
    {
        "within-image SD of log-area (mean over images)": [by_image.std().mean()],
        "between-image SD of median log-area": [by_image.median().std()],
        "share of variance between images": [between_share],
    }
).round(3).style.hide(axis="index").format(precision=3)

# %% tags=["remove-input"]
within_sd, between_sd = by_image.std().mean(), by_image.median().std()
Markdown(
    f"Here {between_share:.0%} of the variance of log-area lies between images. Where that share is well above "
    "zero, an image's own nuclei say more about the size of its next nucleus than the whole dataset does -- the "
    "property that per-image fine-tuning (paper Sec. 2.2) exploits. The spread within one image "
    f"({within_sd:.2f}) is {within_sd / between_sd:.1f} times the spread of the image medians ({between_sd:.2f})"
    + (": the two measures weigh images differently (the share counts every nucleus, so crowded images weigh more; "
       "the spreads count every image once). Size is a real but partial prior, and shape and colour carry the rest "
       "of the similarity." if within_sd > between_sd else
       ": within an image, nucleus size is the tighter of the two, which is the premise of the method.")
)

# %% [markdown]
# ## Summary
#
# - The tiles come from several organs and differ widely in how many nuclei
#   they hold and how large those are ({numref}`fig-data-tiles`,
#   {numref}`fig-data-sizes`).
# - The share of nucleus-size variance that lies between images, computed
#   above, is the measurable part of the paper's premise, *intra-image self
#   similarity*.
# - The method never reads these labels; from chapter 02 on they only score it.

# %% [markdown]
# ## Exercises

# %% [markdown]
# ```{exercise-start}
# :label: ex-data-crowded
# ```
#
# Which training image holds the most nuclei, and are its nuclei smaller or
# larger than those of the split as a whole? (Use the `stats` table of
# {py:obj}`ssimnet.data.nucleus_statistics` computed above.)
#
# ```{exercise-end}
# ```
#
# ```{solution-start} ex-data-crowded
# :class: dropdown
# ```
#
# Count the rows of `stats` per image and compare median areas:

# %%
train = stats[stats.split == "train"]
counts = train.groupby("image").size()
crowded = counts.idxmax()
print(f"{crowded}: {counts.max()} nuclei (median over images {counts.median():.0f}); median area "
      f"{train[train.image == crowded].area.median():.0f} px against {train.area.median():.0f} px for the split")

# %% tags=["remove-input"]
per_image_counts = train.groupby("image").agg(nuclei=("area", "size"), median_area=("area", "median"))
rho = per_image_counts.nuclei.corr(per_image_counts.median_area, method="spearman")
Markdown(f"Over the training images, the number of nuclei and their median area have a Spearman correlation of "
         f"{rho:+.2f}: " + ("crowded images tend to have smaller nuclei, as the same tile area holds more of them."
                            if rho < 0 else "crowding does not come with smaller nuclei here."))

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise-start}
# :label: ex-data-spread
# ```
#
# The method rests on an image's own nuclei resembling each other
# ({numref}`fig-data-self-similarity`). Put a number on how nucleus size
# varies: the standard deviation of the per-image median log-area, against
# the mean within-image standard deviation of log-area. Which is larger?
#
# ```{exercise-end}
# ```
#
# ```{solution-start} ex-data-spread
# :class: dropdown
# ```
#
# Both come from the same `stats` table:

# %%
log_area = np.log(stats.area)
per_image = log_area.groupby(stats.image)
between, within = per_image.median().std(), per_image.std().mean()
print(f"between images {between:.2f}, within an image {within:.2f} (log-area units): "
      f"{'within' if within > between else 'between'} is larger")

# %% [markdown]
# The within-image spread includes the genuine size variation of nuclei, so
# size alone is only part of the similarity the method relies on; what
# matters for USMI (chapter 3) is that candidate *errors* -- merged or
# fragmented nuclei -- spread a patch's areas and hulls further still.

# %% [markdown]
# ```{solution-end}
# ```
