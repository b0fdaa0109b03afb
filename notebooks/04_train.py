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
# (chapter-04_train)=
# # Training SSimNet
#
# Paper Sec. 2.2, Eq. (5). A U-Net $F$ ({py:obj}`ssimnet.net.model.UNet`) is trained on
# the purified patches only, with
#
# $$\mathcal{L} = \lambda\, L_{BCE}\big(p, \tilde y\big) + (1-\lambda)\, L_{CE}\big(F(\tilde x), \tilde z\big), \qquad \lambda = 0.9,$$
#
# where $p = \operatorname{softmax}(F(\tilde x))_1$ is the nucleus probability,
# $\tilde y$ the soft label and $\tilde z$ the Voronoi tri-label (label 2
# ignored) -- both terms read the same two-channel output
# ({py:obj}`ssimnet.net.train.ssimnet_loss`). Adam, learning rate decayed by 0.98 per
# epoch, random flips and 90° rotations ({py:obj}`ssimnet.net.train.Trainer`). Training
# writes a checkpoint after every epoch and resumes from it; rerunning this
# chapter with unchanged settings reuses the finished network.
#
# ```{admonition} In this chapter
# :class: tip
# - **You will learn** how the U-Net is trained on the pseudo labels with the
#   loss of Eq. 5, what its curves and throughput look like, and what it
#   sees and predicts on purified patches.
# - **It runs** the training of the profile's network (resumed from its
#   checkpoint when it exists).
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

glue("chapter_time", Markdown(reference_time("04_train", "results/cpu")), display=False)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.colors import ListedColormap

from ssimnet.book import setup_chapter
from ssimnet.data import read_image
from ssimnet.predict import predict_probability
from ssimnet.runs.pipeline import build_pseudo_labels, train_network
from ssimnet.runs.store import load_pseudo_labels
from ssimnet.tool.viz import VORONOI_COLOURS

chapter = setup_chapter(data_dir=data_dir, run_dir=run_dir, profile=profile, seed=seed, device=device, workers=workers)
config, data_root = chapter.profile, chapter.data_root
trainer, checkpoint = train_network(data_root, run_dir, config, seed=seed, device=chapter.device, workers=chapter.workers, progress=False)
history = pd.DataFrame(trainer.history)
arch = trainer.model.architecture
print(f"U-Net of depth {arch.depth}, width {arch.width} "
      f"({sum(p.numel() for p in trainer.model.parameters()):,} parameters) on {trainer.device}; "
      f"{trainer.epoch} epochs of {int(history.patches.iloc[-1])} patches; profile {profile!r}, seed {seed}")

# %% [markdown]
# ## Training curves
#
# {numref}`fig-training-curves`: The total loss of Eq. (5) and its two terms per epoch (means over the
# epoch's patches), and the learning rate.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Training curves: the loss of Eq. 5, its two terms, and the learning rate per epoch.", "name": "fig-training-curves"}}
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8))
for column, style in [("loss", "-"), ("bce", "--"), ("ce", ":")]:
    left.plot(history.epoch, history[column], style, marker="o", ms=3, label={"loss": "total (Eq. 5)", "bce": "BCE vs soft label", "ce": "CE vs Voronoi label"}[column])
left.set_xlabel("epoch")
left.set_ylabel("loss")
left.legend()
right.plot(history.epoch, history.lr, marker="o", ms=3)
right.set_xlabel("epoch")
right.set_ylabel("learning rate")
right.set_yscale("log")
plt.show()

# %%
throughput = pd.DataFrame(
    {
        "device": [str(trainer.device)],
        "torch threads": [torch.get_num_threads()],
        "seconds per epoch (median)": [history.seconds.median()],
        "training patches per second": [(history.patches / history.seconds).median()],
        "total training minutes": [history.seconds.sum() / 60],
    }
).round(2)
throughput.style.hide(axis="index").format(precision=2)

# %% [markdown]
# ## What the network sees
#
# {numref}`fig-training-patches`: Four purified training patches: the input, the soft label that the BCE term
# pulls towards, the Voronoi tri-label of the CE term (blue: nucleus points,
# black: Voronoi edges, light grey: ignored), and the trained network's nucleus
# probability on the patch.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Four purified training patches: input, soft label, Voronoi tri-label and the trained network's probability.", "name": "fig-training-patches"}}
labels = build_pseudo_labels(data_root, run_dir, config.pseudo, split="train", seed=seed, progress=False)
picks = [labels.kept[i] for i in np.linspace(0, len(labels.kept) - 1, 4).round().astype(int)]
size = labels.patch_size
fig, axes = plt.subplots(4, 4, figsize=(12, 12))
for row, (name, r, c) in zip(axes, picks):
    image = read_image(labels.images[labels.names.index(name)])[r : r + size, c : c + size]
    pseudo = load_pseudo_labels(labels.path(name))
    prob = predict_probability(trainer.model, image, tile=size, overlap=0, device=trainer.device)
    row[0].imshow(image)
    row[1].imshow(pseudo.soft[r : r + size, c : c + size], cmap="magma", vmin=0, vmax=1)
    row[2].imshow(pseudo.voronoi[r : r + size, c : c + size], cmap=ListedColormap(VORONOI_COLOURS), vmin=0, vmax=2, interpolation="nearest")
    row[3].imshow(prob, cmap="magma", vmin=0, vmax=1)
    for ax in row:
        ax.axis("off")
for ax, title in zip(axes[0], ["patch", "soft label", "Voronoi tri-label", "network probability"]):
    ax.set_title(title)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
#
# - The network is trained on purified patches only, with the soft labels
#   (BCE) and the Voronoi tri-labels (CE) of Eq. 5
#   ({numref}`fig-training-curves`).
# - Training is deterministic for a seed on a CPU and resumes from its last
#   checkpoint; its throughput is in the table above.
# - {numref}`fig-training-patches` sets what the network predicts beside the
#   pseudo labels it learned from; the next chapter scores it on the test
#   images.

# %% [markdown]
# ## Exercises

# %% [markdown]
# ```{exercise-start}
# :label: ex-train-schedule
# ```
#
# The learning rate decays by `lr_decay` every epoch. Compute the rate of the
# last epoch from the profile's settings and check it against the training
# history.
#
# ```{exercise-end}
# ```
#
# ```{solution-start} ex-train-schedule
# :class: dropdown
# ```
#
# Epoch $e$ (counting from 1) trains at $\mathrm{lr} \cdot \mathrm{decay}^{e-1}$:

# %%
expected = config.train.lr * config.train.lr_decay ** (config.train.epochs - 1)
print(f"expected {expected:.3g}, recorded {history.lr.iloc[-1]:.3g}")

# %% [markdown]
# ```{solution-end}
# ```
