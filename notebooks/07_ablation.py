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
# # Ablation: Table 3
#
# The paper's Table 3 switches off one component of SSimNet at a time:
#
# - **label softening** (Eq. 4): the BCE target is the hard candidate map
#   instead of the soft label (`TrainConfig.soft_labels = False`);
# - **data purification** (Algorithm 1): training uses every patch instead of
#   the 70 % with the lowest USMI (`TrainConfig.purify = False`);
# - **fine-tuning**: test images are predicted by the trained network
#   directly (`TrainConfig.finetune_epochs = 0`).
#
# Each variant is a separate training (cached in the run directory), under
# the same protocol as Table 1.

# %% tags=["parameters"]
data_dir = ""  # dataset root in the uniform layout, empty for synthetic data
run_dir = "runs/smoke"
profile = "smoke"
seed = 0
device = ""
workers = 2  # worker processes of the pseudo-label stage

# %%
import pandas as pd
from IPython.display import Markdown

from ssimnet.book import setup_chapter
from ssimnet.config import ABLATION
from ssimnet.experiments import run_methods
from ssimnet.metrics import summarise_runs
from ssimnet.paper import TABLE3
from ssimnet.report import comparison_table, discrepancies

chapter = setup_chapter(data_dir=data_dir, run_dir=run_dir, profile=profile, seed=seed, device=device, workers=workers)
config, data_root = chapter.profile, chapter.data_root
summaries, seconds = {}, {}
for v in ABLATION:  # each variant's training switches (ssimnet.config.AblationVariant)
    runs = run_methods(data_root, run_dir, v.profile(config), [v.method], seed=seed, device=chapter.device, workers=chapter.workers,
                       progress=False)[v.method]
    summaries[v.name] = summarise_runs(runs.means(), metrics=("precision", "recall", "dice", "aji", "aji_plus", "pq"))
    seconds[v.name] = runs.seconds
reported = {v.name: TABLE3[v.components] for v in ABLATION}
print(f"test split of {data_root.name}; profile {profile!r}; {config.baselines.network_runs} run(s) per variant, seeds from {seed}")

# %% [markdown]
# ## Table 3
#
# Percent; the paper reports one value per cell, this project "mean ± std
# (best run)" over its runs.

# %%
marks = pd.DataFrame(
    [{"method": v.name, **{c: "✓" if on else "" for c, on in zip(("softening", "purification", "fine-tuning"), v.components)}}
     for v in ABLATION]
)
marks.merge(comparison_table(summaries, reported), on="method").set_index(["method", "source"])

# %% [markdown]
# AJI+ and PQ of the same runs (not reported by the paper), and compute time:

# %%
pd.DataFrame(
    {n: {"aji_plus": f"{100 * s.mean['aji_plus']:.1f}", "pq": f"{100 * s.mean['pq']:.1f}", "compute time (s)": f"{seconds[n]:.0f}"}
     for n, s in summaries.items()}
).T

# %% [markdown]
# ## Each component's effect
#
# Difference of the full method minus each ablated variant, in percentage
# points (positive: the component helps), here and in the paper:

# %%
full = "SSimNet (all)"
effects = pd.DataFrame(
    [{"component": n.removeprefix("w/o "),
      **{f"{m} (this run)": round(100 * (summaries[full].mean[m] - summaries[n].mean[m]), 1) for m in ("dice", "aji")},
      **{f"{m} (paper)": round(reported[full][m] - reported[n][m], 1) for m in ("dice", "aji")}}
     for n in summaries if n != full]
).set_index("component")
effects

# %% tags=["hide-input"]
agree = [c for c in effects.index if (effects.loc[c, "aji (this run)"] > 0) == (effects.loc[c, "aji (paper)"] > 0)]
Markdown(f"The sign of the AJI effect agrees with the paper's for {len(agree)} of {len(effects)} components"
         + (f" ({', '.join(agree)})." if agree else "."))

# %% [markdown]
# Reproduced values further than a standard deviation from the paper's
# (the paper gives no deviation for Table 3, so the tolerance is ours):

# %%
discrepancies(summaries, reported)

# %% [markdown]
# Likely reasons, where the gaps are large. Every variant with fine-tuning
# inherits the behaviour of fine-tuning under the profile's schedule: in the
# `cpu` profile (10 epochs instead of 150), fine-tuning on each image's own
# pseudo labels raised recall and Dice but lowered AJI (see the fine-tuning
# chapter), whereas in the paper it raises AJI. So the three fine-tuned rows
# sit below the paper's AJI by a similar margin; the row without fine-tuning
# comes closest (5 AJI points below the paper with 10 epochs, within the
# paper's deviation with 20). The differences *between* rows, which are the
# ablation's point, are the better guide: in the `cpu` profile on MoNuSeg,
# softening added 5.3 AJI points and purification 2.7, close to the paper's
# 4.2 and 2.2. With one run per variant, the tolerance is zero, so
# every difference is listed.
