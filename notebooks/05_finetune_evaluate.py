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
# (chapter-05_finetune_evaluate)=
# # Fine-tuning and evaluation
#
# Before predicting a test image, the paper fine-tunes the trained network
# for five epochs on that image's own pseudo labels (its purified patches,
# $SET_k$), starting from the optimiser state saved in the checkpoint
# ({py:obj}`ssimnet.net.train.Trainer.finetune_copy`). The paper's schedule has decayed
# its learning rate to $5\cdot10^{-5} \times 0.98^{150} \approx 2.4\cdot10^{-6}$
# by then; a profile with a shorter, steeper schedule sets
# `InferenceConfig.finetune_lr` to that value, since {term}`fine-tuning <Fine-tuning>` at a large rate
# fits the image's own pseudo labels, merges included (the `cpu` profile's
# comment in `ssimnet/config/profiles.py` lists the rates tried on training images).
# Prediction runs on overlapping
# tiles blended into one probability map ({py:obj}`ssimnet.predict.maps.predict_probability`);
# probability > 0.5, holes filled, small objects removed and connected
# components give the nuclei ({py:obj}`ssimnet.predict.nuclei.instances`, the paper's setting).
# Ground truth is read only to score ({py:obj}`ssimnet.metrics`).
#
# ```{admonition} In this chapter
# :class: tip
# - **You will learn** how the paper fine-tunes the network on each test
#   image's own pseudo labels, how the result scores beside the paper's
#   Table 1, where the predictions go wrong, and every intermediate of the
#   method on one test image.
# - **It runs** prediction on the test images without and with per-image
#   fine-tuning, and the instance methods on the training images.
# - **Time:** {glue:md}`chapter_time`.
# ```

# %% tags=["parameters"]
data_dir = ""  # dataset root in the uniform layout, empty for synthetic data
run_dir = "runs/smoke"
profile = "smoke"
seed = 0
device = ""
workers = 2  # worker processes of the pseudo-label stage
results_dir = "results/cpu"  # committed MoNuSeg studies (the fine-tuning study below)


# %% tags=["remove-cell"]
from IPython.display import Markdown
from myst_nb import glue

from ssimnet.book.guide import reference_time

glue("chapter_time", Markdown(reference_time("05_finetune_evaluate", "results/cpu")), display=False)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown

from ssimnet.book import setup_chapter
from ssimnet.book.paper import TABLE1
from ssimnet.data import list_samples, read_label, read_sample
from ssimnet.runs.evaluate import evaluate_network
from ssimnet.runs.pipeline import train_network
from ssimnet.tool.viz import error_overlay

chapter = setup_chapter(data_dir=data_dir, run_dir=run_dir, profile=profile, seed=seed, device=device, workers=workers)
config, data_root = chapter.profile, chapter.data_root
trainer, checkpoint = train_network(data_root, run_dir, config, seed=seed, device=chapter.device, workers=chapter.workers, progress=False)
runs = {}
for label, epochs in [("SSimNet w/o ft", 0), ("SSimNet", config.inference.finetune_epochs)]:
    runs[label] = evaluate_network(data_root, run_dir, config, trainer, split="test", finetune_epochs=epochs,
                                   method="cc", seed=seed, workers=chapter.workers, progress=False)
print(f"test split of {data_root.name}: {len(runs['SSimNet'][0])} images; profile {profile!r}, seed {seed}; "
      f"fine-tuning {config.inference.finetune_epochs} epochs per image at learning rate {config.inference.finetune_lr or trainer.learning_rate:.2g}")

# %% [markdown]
# ## Scores beside the paper's
#
# Means over the test images (percent). The paper's rows are Table 1's means
# over ten runs on MoNuSeg, *reported, not reproduced here*; ours is one run
# of the chosen profile. On the synthetic data of the `smoke` profile the
# comparison is only a sanity check.

# %%
columns = ["precision", "recall", "dice", "aji", "aji_plus", "pq"]
rows = []
for name, (scores, _) in runs.items():
    rows.append({"method": f"{name} (this run)", **(scores[columns].mean() * 100).round(1).to_dict()})
    rows.append({"method": f"{name} (paper, reported)", **{m: TABLE1[name][m][0] for m in ("precision", "recall", "dice", "aji")}})
table = pd.DataFrame(rows).set_index("method")
table.astype(object).where(table.notna(), "–")  # the paper reports no AJI+ or PQ

# %% [markdown]
# – : not reported by the paper (Table 1 gives precision, recall, Dice and AJI).

# %% tags=["remove-input"]
with_ft, without = runs["SSimNet"][0], runs["SSimNet w/o ft"][0]
Markdown(
    f"Per-image fine-tuning changes the mean Dice from {100 * without.dice.mean():.1f} to {100 * with_ft.dice.mean():.1f} "
    f"and the mean AJI from {100 * without.aji.mean():.1f} to {100 * with_ft.aji.mean():.1f} "
    f"(AJI better on {int((with_ft.aji.values > without.aji.values).sum())} of {len(with_ft)} images); "
    f"it costs {with_ft.seconds.median():.1f} s per image against {without.seconds.median():.1f} s for prediction alone "
    f"(median, on {trainer.device})."
)

# %% [markdown]
# ## Does the paper's fine-tuning gain appear?
#
# The paper reports that fine-tuning raises {term}`AJI` (Table 1, the gain is below). A plain fine-tuning
# also re-estimates the batch-normalisation statistics on the one image, so a
# variant keeps them frozen at the trained network's
# (`InferenceConfig.finetune_norm = "frozen"`). Both were measured on the first 8
# MoNuSeg *training* images with one `cpu` network (seed 0), from its own
# pseudo labels (`studies/finetune.py`; committed, not rerun by the book):

# %%
from ssimnet.book.report import study_network
from ssimnet.book.results import FINETUNE, load_results
from ssimnet.config import get_profile

finetune_runs, finetune_info = load_results(results_dir, kind=FINETUNE)
finetune = finetune_runs.groupby("config", sort=False)[["dice", "aji", "pq"]].mean().mul(100).round(1)
finetune["seconds per image"] = finetune_runs.groupby("config", sort=False).seconds.median().round(1)
finetune

# %% tags=["hide-input"]
gain = finetune.aji - finetune.loc["no fine-tuning", "aji"]
study_train = finetune_info["parameters"]["train"]
paper_gain = TABLE1["SSimNet"]["aji"][0] - TABLE1["SSimNet w/o ft"]["aji"][0]
tool_finetune = get_profile("cpu").for_tool().inference.finetune_epochs
Markdown(
    f"The paper's fine-tuning gain is {paper_gain:+.1f} AJI. Against no fine-tuning, the paper's fine-tuning changes "
    f"AJI here by {gain['fine-tuning (paper)']:+.1f} and the frozen variant by "
    f"{gain['fine-tuning, batch norm frozen']:+.1f}, at about "
    f"{finetune.loc['fine-tuning (paper)', 'seconds per image'] / finetune.loc['no fine-tuning', 'seconds per image']:.0f} "
    f"times the time per image: "
    + ("the paper's gain does not appear on these training images. " if gain.max() < paper_gain / 2
       else "a gain of the paper's order appears. ")
    + f"The study's network ({study_network(finetune_info)}) is narrower than the paper's (width "
    f"{get_profile('paper').train.width}) and trained {get_profile('paper').train.epochs // study_train['epochs']} "
    "times shorter, and its images are ones it trained on; chapter 08 repeats the study on images the network never "
    "saw. `ssimnet segment` fine-tunes "
    + (f"{tool_finetune} epochs by default." if tool_finetune else "only when asked (`--finetune-epochs`).")
)

# %% [markdown]
# ## Per image
#
# {numref}`fig-finetune-per-image`: Each test image's AJI and {term}`Dice` without
# and with fine-tuning, images sorted by their AJI with it.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "AJI and Dice of each test image without (open) and with (filled) per-image fine-tuning.", "name": "fig-finetune-per-image"}}
paired = with_ft.set_index("image")[["dice", "aji"]].join(
    without.set_index("image")[["dice", "aji"]].add_suffix("_noft"))
paired = paired.sort_values("aji")
fig, axes = plt.subplots(1, 2, figsize=(10, 0.32 * len(paired) + 1.2), sharey=True)
for ax, metric, title in zip(axes, ("aji", "dice"), ("AJI", "Dice")):
    y = np.arange(len(paired))
    ax.hlines(y, paired[f"{metric}_noft"] * 100, paired[metric] * 100, color="0.6", lw=1)
    ax.scatter(paired[f"{metric}_noft"] * 100, y, facecolors="white", edgecolors="tab:blue", label="w/o fine-tuning", zorder=3)
    ax.scatter(paired[metric] * 100, y, color="tab:blue", label="with fine-tuning", zorder=3)
    ax.set_xlabel(f"{title} (%)")
    ax.grid(axis="x", alpha=0.3)
axes[0].set_yticks(np.arange(len(paired)), [name[:16] for name in paired.index], fontsize=8)
axes[0].legend(fontsize=8, loc="lower right")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Predictions
#
# {numref}`fig-predictions`: Two test images with the paper's colours: green true positive, yellow false
# positive, red false negative (fine-tuned network; the left half of each
# image is shown at full resolution).

# %% tags=["hide-input"] mystnb={"figure": {"caption": "SSimNet on two test images: true positives green, false positives yellow, false negatives red.", "name": "fig-predictions"}}
samples = {s.name: s for s in list_samples(data_root, "test")}
chosen = [with_ft.sort_values("aji").image.iloc[i] for i in (0, -1)]
fig, axes = plt.subplots(1, 2, figsize=(13, 6.8))
for ax, name in zip(axes, chosen):
    image, truth = read_sample(samples[name])
    pred = read_label(runs["SSimNet"][1] / f"{name}.png")
    half = (slice(None), slice(0, image.shape[1] // 2))
    ax.imshow(error_overlay(image[half], truth[half], pred[half], alpha=0.45))
    s = with_ft.set_index("image").loc[name]
    ax.set_title(f"{name[:23]}: Dice {s.dice:.3f}, AJI {s.aji:.3f}", fontsize=10)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The pipeline on one test image (in place of the paper's Fig. 2)
#
# {numref}`fig-pipeline`: Every intermediate of the method on the best-scoring test image above,
# computed by {py:obj}`ssimnet.predict.segment.segment_image` (which runs {py:obj}`ssimnet.pseudo.labels.pseudo_labels`,
# fine-tunes and predicts), shown on the window where most predicted nuclei
# touch: the image $I$; its hematoxylin reconstruction $I^T$ (Eq. 1–2); the
# fuzzy c-means nucleus cluster and the candidates $P$ after the active
# contour (Eq. 3); the soft label $\tilde y$ (Eq. 4); the patch grid of
# Algorithm 1, each overlapping patch drawn as its central square (green:
# among this image's lowest USMI, the profile's fraction α, used to fine-tune;
# red: dropped); the Voronoi tri-label $\tilde z$ (blue nucleus points, black
# edges, light grey ignored); the network's nucleus probability after fine-tuning; and the
# instances, outlined. Ground truth is not used.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Every intermediate of the method on one test image (in place of the paper's Fig. 2).", "name": "fig-pipeline"}}
from matplotlib.colors import ListedColormap
from matplotlib.patches import Rectangle

from ssimnet.pseudo.candidates import label_candidates
from ssimnet.pseudo.purify import kept_patches
from ssimnet.tool.segmenter import Segmenter
from ssimnet.tool.viz import VORONOI_COLOURS, crowded_window, outline_overlay

image, _ = read_sample(samples[chosen[-1]])
result = Segmenter(trainer, config.inference, pseudo=config.pseudo).segment(image, seed=seed)
pseudo = result.pseudo
window = crowded_window(result.label, min(256, *image.shape[:2]))
label_components = label_candidates(pseudo.candidates)
size = config.pseudo.patch_size
kept = set(kept_patches(pseudo.patches, keep=config.pseudo.keep_fraction))
panels = [
    ("image $I$", image, None),
    ("hematoxylin $I^T$ (Eq. 2)", pseudo.hematoxylin, None),
    ("fuzzy c-means cluster", pseudo.fcm, "gray"),
    ("candidates $P$ (Eq. 3)", outline_overlay(image, label_components), None),
    (r"soft label $\tilde y$ (Eq. 4)", pseudo.soft, "magma"),
    ("USMI patches (Alg. 1)", image, None),
    (r"Voronoi tri-label $\tilde z$", pseudo.voronoi, ListedColormap(VORONOI_COLOURS)),
    ("nucleus probability", result.probability, "viridis"),
    ("instances", outline_overlay(image, result.label), None),
]
fig, axes = plt.subplots(3, 3, figsize=(12, 12.5))
for ax, (title, panel, cmap) in zip(axes.flat, panels):
    if title.startswith("USMI"):
        ax.imshow(panel)
        stride = config.pseudo.patch_stride
        inset = (size - stride) // 2  # each patch drawn as its central stride x stride cell: the cells tile the image
        for i, p in enumerate(pseudo.patches):
            (r, c), colour = p.corner, "lime" if i in kept else "red"
            ax.add_patch(Rectangle((c + inset, r + inset), stride, stride, fc=colour, alpha=0.3, ec=colour, lw=0.8))
        ax.set_title(f"{title}: {len(kept)} of {len(pseudo.patches)} kept", fontsize=10)
    else:
        top = 2 if title.startswith("Voronoi") else 1  # the tri-label's three values, each its own colour
        ax.imshow(panel[window], cmap=cmap, vmin=0 if cmap else None, vmax=top if cmap else None, interpolation="nearest")
        ax.set_title(title, fontsize=10)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Connected components or a watershed?
#
# The paper separates nuclei by connected components. A watershed on the
# probability map (`instances(..., method="watershed")`), seeded at its peaks,
# can split touching nuclei. Which is better is decided on the **training**
# split (its labels used for this model selection only), without fine-tuning;
# the test split is not consulted.

# %%
choice = []
for method in ("cc", "watershed"):
    scores, _ = evaluate_network(data_root, run_dir, config, trainer, split="train", finetune_epochs=0,
                                 method=method, seed=seed, workers=chapter.workers, progress=False)
    choice.append({"instances": method, **(scores[["dice", "aji", "aji_plus", "pq"]].mean() * 100).round(1).to_dict()})
choice = pd.DataFrame(choice).set_index("instances")
choice

# %% tags=["remove-input"]
best = choice.aji.idxmax()
tool = get_profile(profile).for_tool().inference.instances
Markdown(f"On the training split of this dataset, `{best}` gives the higher AJI "
         f"({choice.aji.max():.1f} against {choice.aji.min():.1f}). Chapter 09 compares more instance methods on the "
         "same images, among them "
         + (f"`{tool}`, which this profile's book networks and `ssimnet segment` both use beyond the paper."
            if tool == config.inference.instances else
            f"`{config.inference.instances}`, which this profile's book networks use beyond the paper, and `{tool}`, "
            "which `ssimnet segment` uses by default."))

# %% [markdown]
# ## Summary
#
# - Per-image fine-tuning trains a copy of the network on the test image's
#   own purified patches before predicting it; its effect on this run is
#   stated above, and on images the network never trained on in chapter 08.
# - Errors are shown in the paper's colours ({numref}`fig-predictions`), and
#   every stage of the method on one test image in {numref}`fig-pipeline`.
# - Connected components against a watershed was decided on the training
#   images only; chapter 09 compares more instance methods.

# %% [markdown]
# ## Exercises

# %% [markdown]
# ```{exercise-start}
# :label: ex-aji-by-hand
# ```
#
# Two nuclei of 100 pixels each touch, and the prediction merges them into
# one object of 200 pixels. Compute by hand the pixel Dice and the AJI, then
# check with {py:obj}`ssimnet.metrics.score`. Why does AJI punish the merge
# and Dice not at all?
#
# ```{exercise-end}
# ```
#
# ```{solution-start} ex-aji-by-hand
# :class: dropdown
# ```
#
# Dice is 1: every pixel is right. AJI matches each true nucleus with the
# merged object: intersections 100 + 100, unions 200 + 200 (the merged object
# is counted once per match), so AJI = 200 / 400 = 0.5.

# %%
from ssimnet.metrics import score

truth = np.zeros((10, 20), np.int32)
truth[:, :10], truth[:, 10:] = 1, 2
merged = (truth > 0).astype(np.int32)
result = score(truth, merged)
print(f"Dice {result.dice:.2f}, AJI {result.aji:.2f}")

# %% [markdown]
# ```{solution-end}
# ```
