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

# %%
import dataclasses

import pandas as pd

from ssimnet.config import get_profile
from ssimnet.data import resolve_dataset
from ssimnet.io import run_methods
from ssimnet.metrics import summarise_runs
from ssimnet.paper import TABLE3
from ssimnet.report import comparison_table, discrepancies

config = get_profile(profile)
data_root = resolve_dataset(data_dir, run_dir, config.synthetic)


def variant(**changes):
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **changes))


# name: (softening, purification, fine-tuning), profile, method
variants = {
    "w/o label softening": ((False, True, True), variant(soft_labels=False), "ssimnet"),
    "w/o data purification": ((True, False, True), variant(purify=False), "ssimnet"),
    "w/o fine-tuning": ((True, True, False), config, "ssimnet_noft"),
    "SSimNet (all)": ((True, True, True), config, "ssimnet"),
}
summaries, seconds = {}, {}
for name, (_, prof, method) in variants.items():
    runs = run_methods(data_root, run_dir, prof, [method], seed=seed, device=device or None, workers=2, progress=False)[method]
    summaries[name] = summarise_runs(runs.means(), metrics=("precision", "recall", "dice", "aji", "aji_plus", "pq"))
    seconds[name] = runs.seconds
reported = {name: TABLE3[key] for name, (key, _, _) in variants.items()}
print(f"test split of {data_root.name}; profile {profile!r}; {config.baselines.network_runs} run(s) per variant, seeds from {seed}")

# %% [markdown]
# ## Table 3
#
# Percent; the paper reports one value per cell, this project "mean ± std
# (best run)" over its runs.

# %%
marks = pd.DataFrame(
    [{"method": n, "softening": "✓" if k[0] else "", "purification": "✓" if k[1] else "", "fine-tuning": "✓" if k[2] else ""}
     for n, (k, _, _) in variants.items()]
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
pd.DataFrame(
    [{"component": n.removeprefix("w/o "),
      **{f"{m} (this run)": round(100 * (summaries[full].mean[m] - summaries[n].mean[m]), 1) for m in ("dice", "aji")},
      **{f"{m} (paper)": round(reported[full][m] - reported[n][m], 1) for m in ("dice", "aji")}}
     for n in variants if n != full]
).set_index("component")

# %% [markdown]
# Reproduced values further than a standard deviation from the paper's
# (the paper gives no deviation for Table 3, so the tolerance is ours):

# %%
discrepancies(summaries, reported)
