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
# (chapter-03_purification)=
# # Data purification and Voronoi labels
#
# Paper Sec. 2.2. Each training image is cut into overlapping 256×256 patches.
# For each patch, the **Unsupervised Shape Measure Index** (Algorithm 1,
# {py:obj}`ssimnet.pseudo.purify.usmi`) divides the mean convex-hull area of its candidates
# by the mean area of the candidates between the lower and upper quartile:
#
# $$U = \frac{\bar H}{\bar A}, \qquad \bar H = \frac{1}{C}\sum_i h_i, \qquad
# \bar A = \operatorname{mean}\{a_i : Q_1 \le a_i \le Q_3\}.$$
#
# Isolated convex nuclei of one size give $U \approx 1$; candidates that merge
# several nuclei have large, non-convex hulls and raise it. The
# $\alpha = 70\,\%$ of patches with the lowest $U$ over the whole training set
# are kept. Each kept patch also gets a Voronoi tri-label
# ({py:obj}`ssimnet.pseudo.voronoi.voronoi_label`, after Qu et al. 2020): centroids of the
# candidates are nuclei (1), the Voronoi edges between them background (0),
# everything else is ignored (2).
#
# ```{admonition} In this chapter
# :class: tip
# - **You will learn** how Algorithm 1's {term}`USMI` scores each training patch,
#   which patches {term}`purification <Purification>` keeps and drops, whether the kept ones hold
#   cleaner candidates (checked against the annotations), and what the
#   Voronoi tri-labels look like.
# - **It runs** USMI on every patch of the cached pseudo labels, and scores
#   the kept and dropped patches.
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

glue("chapter_time", Markdown(reference_time("03_purification", "results/cpu")), display=False)

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown
from matplotlib.colors import ListedColormap

from ssimnet.book import setup_chapter
from ssimnet.data import read_image
from ssimnet.runs.evaluate import pseudo_label_quality
from ssimnet.runs.pipeline import build_pseudo_labels
from ssimnet.runs.store import load_pseudo_labels
from ssimnet.tool.viz import VORONOI_COLOURS, outline_overlay

chapter = setup_chapter(data_dir=data_dir, run_dir=run_dir, profile=profile, seed=seed, device=device, workers=workers)
config, data_root = chapter.profile, chapter.data_root
labels = build_pseudo_labels(data_root, run_dir, config.pseudo, split="train", seed=seed, workers=chapter.workers, progress=False)
per_image, patches = pseudo_label_quality(data_root, labels)
finite = patches[np.isfinite(patches.usmi)]
print(f"{len(patches)} patches of {labels.patch_size} px from {len(labels.names)} training images; "
      f"{int(patches.kept.sum())} kept (alpha = {config.pseudo.keep_fraction:.0%}); "
      f"{int((~np.isfinite(patches.usmi)).sum())} with fewer than {config.pseudo.min_components} candidates (USMI = inf)")

# %% [markdown]
# ## The USMI of every patch
#
# {numref}`fig-usmi`: Left: the distribution of USMI, kept patches in blue. Right: the paper's
# Fig. 3 (right) -- each patch placed by its mean convex-hull area $\bar H$
# and its inter-quartile mean area $\bar A$; the line $\bar H = \bar A$ is
# $U = 1$, and patches far above it hold merged candidates.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "USMI of every training patch (left) and the paper's Fig. 3: mean hull area against inter-quartile mean area (right).", "name": "fig-usmi"}}
fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6))
bins = np.linspace(finite.usmi.min(), np.quantile(finite.usmi, 0.99), 40)
for kept, colour, label in [(True, "tab:blue", "kept"), (False, "gold", "dropped")]:
    part = finite[finite.kept == kept]
    left.hist(part.usmi.clip(upper=bins[-1]), bins=bins, color=colour, alpha=0.8, label=f"{label} ({len(part)})")
    right.scatter(part.mean_area, part.mean_hull_area, s=9, color=colour, label=label)
left.set_xlabel("USMI (clipped at the 99th percentile)")
left.set_ylabel("patches")
left.legend()
top = max(finite.mean_area.max(), np.quantile(finite.mean_hull_area, 0.99))
right.plot([0, top], [0, top], "k--", lw=0.8, label="U = 1")
right.set_xlim(0, finite.mean_area.max() * 1.05)
right.set_ylim(0, top * 1.05)
right.set_xlabel(r"inter-quartile mean candidate area $\bar A$ (px)")
right.set_ylabel(r"mean convex-hull area $\bar H$ (px)")
right.legend()
plt.show()

# %% [markdown]
# ## Kept and dropped patches
#
# {numref}`fig-usmi-patches`: Top row: the three patches of lowest USMI; bottom row: the three of highest
# finite USMI. Candidates are outlined in green.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "The three patches of lowest USMI (top) and of highest finite USMI (bottom), candidates outlined.", "name": "fig-usmi-patches"}}
def show_patch(ax, row):
    image = read_image(labels.images[labels.names.index(row.image)])
    result = load_pseudo_labels(labels.path(row.image))
    crop = (slice(row.row, row.row + labels.patch_size), slice(row.col, row.col + labels.patch_size))
    ax.imshow(outline_overlay(image[crop], result.candidates[crop].astype(int)))
    ax.set_title(f"USMI {row.usmi:.2f} ({'kept' if row.kept else 'dropped'})\nDice {row.dice:.2f}, AJI {row.aji:.2f}", fontsize=9)
    ax.axis("off")


ordered = finite.sort_values("usmi")
fig, axes = plt.subplots(2, 3, figsize=(12, 8.6))
for ax, (_, row) in zip(axes[0], ordered.head(3).iterrows()):
    show_patch(ax, row)
for ax, (_, row) in zip(axes[1], ordered.tail(3)[::-1].iterrows()):
    show_patch(ax, row)
plt.show()

# %% [markdown]
# ## Does purification select cleaner pseudo labels?
#
# The question the method depends on, answered with the ground truth of the
# training images (read here for evaluation only): the quality of the
# candidates inside kept and dropped patches, and the rank correlation of
# USMI with that quality over all measurable patches.

# %%
quality = patches.groupby(patches.kept.map({True: "kept", False: "dropped"}))[["usmi", "precision", "recall", "dice", "aji"]]
table = quality.mean().assign(patches=quality.size()).round(3)
table

# %% tags=["remove-input"]
rho = finite[["usmi", "dice", "aji"]].corr(method="spearman").loc["usmi", ["dice", "aji"]]
kept, dropped = table.loc["kept"], table.loc["dropped"]
Markdown(
    f"On this dataset the kept patches have pseudo-label Dice {kept.dice:.3f} and AJI {kept.aji:.3f}, "
    f"the dropped ones {dropped.dice:.3f} and {dropped.aji:.3f}. Over the {len(finite)} patches with a finite "
    f"USMI, its Spearman correlation is {rho.dice:.2f} with Dice and {rho.aji:.2f} with AJI: "
    + ("a lower USMI does mark cleaner pseudo labels." if rho.aji < -0.3 else "USMI tells little about pseudo-label quality here.")
)

# %% [markdown]
# ## Voronoi tri-labels
#
# {numref}`fig-voronoi`: For the kept patch of lowest USMI: the candidates, their Voronoi tri-label
# (blue: nucleus points, 1; black: Voronoi edges, 0; light grey: ignored, 2), and
# the soft label that the binary cross-entropy term of Eq. 5 uses.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Candidates, Voronoi tri-label and soft label of the kept patch of lowest USMI.", "name": "fig-voronoi"}}
row = ordered.iloc[0]
image = read_image(labels.images[labels.names.index(row.image)])
result = load_pseudo_labels(labels.path(row.image))
crop = (slice(row.row, row.row + labels.patch_size), slice(row.col, row.col + labels.patch_size))
fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
axes[0].imshow(outline_overlay(image[crop], result.candidates[crop].astype(int)))
axes[0].set_title("candidates")
axes[1].imshow(result.voronoi[crop], cmap=ListedColormap(VORONOI_COLOURS), vmin=0, vmax=2, interpolation="nearest")
axes[1].set_title("Voronoi tri-label")
axes[2].imshow(result.soft[crop], cmap="magma", vmin=0, vmax=1)
axes[2].set_title("soft label")
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# ## Summary
#
# - USMI divides a patch's mean convex-hull area by its typical candidate
#   area; merged candidates raise it ({numref}`fig-usmi`,
#   {numref}`fig-usmi-patches`).
# - Purification keeps the fraction α of patches with the lowest USMI; the
#   table above says, against the annotations, how the kept and dropped
#   patches differ here.
# - Each kept patch also gets Voronoi tri-labels from its candidates' centres
#   ({numref}`fig-voronoi`), which chapter 04's loss reads.

# %% [markdown]
# ## Exercises

# %% [markdown]
# ```{exercise-start}
# :label: ex-usmi-hand
# ```
#
# Draw two toy patches: one with five nuclei of equal size, one with five
# nuclei of very different sizes. Which has the lower USMI
# ({py:obj}`ssimnet.pseudo.purify.usmi`), and what does USMI give a patch with only
# two nuclei?
#
# ```{exercise-end}
# ```
#
# ```{solution-start} ex-usmi-hand
# :class: dropdown
# ```
#
# Equal discs give the lower USMI; with fewer than `min_components` (3)
# components USMI is infinite, so such patches are dropped first:

# %%
from skimage.draw import disk

from ssimnet.pseudo.purify import usmi


def patch(radii):
    mask = np.zeros((128, 128), bool)
    for k, r in enumerate(radii):
        mask[disk((30 + 40 * (k % 3), 25 + 40 * (k // 3)), r, shape=mask.shape)] = True
    return mask


print({"equal": usmi(patch([8, 8, 8, 8, 8])), "varied": usmi(patch([3, 14, 6, 12, 4])), "two nuclei": usmi(patch([8, 8]))})

# %% [markdown]
# ```{solution-end}
# ```
