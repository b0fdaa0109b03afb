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
# (chapter-08_report)=
# # Reproduction report
#
# Every number of the paper's Tables 1 and 3 that this project reproduces,
# beside the number the paper reports, with the difference. On real data
# (MoNuSeg) the page shows the run that built this book; when the book is
# built without real data (the `smoke` profile, as in CI) it shows the
# reference results committed under `results/<profile>/`, which
# `ssimnet book` writes for every run on real data ({py:obj}`ssimnet.runs.experiments.export_results`).
# Either way the page says where the numbers come from: code version, profile,
# hardware and library versions are recorded with them.

# %% tags=["parameters"]
data_dir = ""  # dataset root in the uniform layout, empty for synthetic data
run_dir = "runs/smoke"
profile = "smoke"
seed = 0
device = ""
workers = 2  # worker processes of the pseudo-label stage
results_dir = "results/cpu"  # committed reference results, shown when data_dir holds no real data
gpu_results_dir = "results/gpu"  # the committed run of the paper profile on a lent GPU

# %% tags=["hide-input"]
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from ssimnet.baselines import METHOD_NAMES
from ssimnet.book import setup_chapter
from ssimnet.book.paper import TABLE1
from ssimnet.book.report import method_summaries, reproduction_report, study_network, table1, table3
from ssimnet.book.results import RESULTS, SELECTION, load_results
from ssimnet.config import ABLATION
from ssimnet.runs.experiments import export_results

chapter = setup_chapter(data_dir=data_dir, run_dir=run_dir, profile=profile, seed=seed, device=device, workers=workers)
if chapter.real:
    per_image, info = export_results(chapter.data_root, run_dir, chapter.profile, seed=seed, device=chapter.device,
                                     workers=chapter.workers, progress=False)
    source = "this book's own run"  # where it was written is a path on the machine that ran it
else:
    per_image, info = load_results(results_dir, kind=RESULTS)
    source = f"the committed reference results in `{results_dir}` (this book was built without real data)"
hardware = info["hardware"]
machine = f"{hardware['cpus']} CPUs, {hardware['memory_gb']} GB" + (f", GPU {hardware['gpu']}" if hardware["gpu"] else ", no GPU")
Markdown(
    f"**Source:** {source}. Profile `{info['profile']}`, seed {info['seed']}, data `{info['data']['name']}` "
    f"({info['data']['test_images']} test images); ssimnet {info['ssimnet']} at commit "
    f"`{(info['commit'] or 'unknown')[:10]}`{' (with uncommitted changes)' if info['dirty'] else ''}; "
    f"created {info['created']} on {machine} (torch on `{hardware['device']}`, {hardware['torch_threads']} threads)."
)

# %% [markdown]
# ## Table 1: MoNuSeg
#
# Percent, "mean ± std (best run)" over runs with different seeds, as in the
# paper's Sec. 3.1; the best run is the one with the highest Dice. The
# paper's rows marked *reported* are its numbers, not reproduced here.

# %%
table1(per_image).set_index(["method", "source"])

# %% [markdown]
# ## Table 3: ablation
#
# The paper gives one value per cell.

# %%
table3(per_image).set_index(["method", "source"])

# %% [markdown]
# ## AJI+, PQ and compute time
#
# The paper reports neither AJI+ (one-to-one matching) nor panoptic quality;
# both are computed here from the same predictions. Compute time is training
# plus segmentation of the test images, summed over runs, measured when each
# stage ran on the hardware above.

# %%
names = {**{k: METHOD_NAMES[k] for k in dict.fromkeys(per_image.method) if k in METHOD_NAMES},
         **{v.key: v.name for v in ABLATION if v.key not in METHOD_NAMES}}
summaries = method_summaries(per_image, names)
pd.DataFrame(
    {name: {**{m: f"{100 * s.mean[m]:.1f} ± {100 * s.std[m]:.1f}" for m in ("dice", "aji", "aji_plus", "pq")},
            "runs": s.runs, "compute time (min)": round(info["compute_seconds"].get(key, float("nan")) / 60, 1)}
     for key, name in names.items() if (s := summaries.get(name))}
).T

# %% [markdown]
# ## Every reproduced number beside the paper's
#
# Difference = reproduced − reported, in percentage points; the tolerance is
# the larger of the two standard deviations (Table 3 reports none, so there
# it is ours alone, and zero for a single run).

# %%
report = reproduction_report(per_image)
report.set_index(["table", "method", "metric"]).style.format(precision=1, na_rep="–").apply(
    lambda row: ["color: #b00" if row["beyond std"] else "" for _ in row], axis=1)

# %%
beyond = report[report["beyond std"]]
Markdown(
    f"{len(beyond)} of {len(report)} reproduced numbers differ from the paper's by more than the tolerance "
    f"({len(report) - len(beyond)} within it). Where and why is discussed in the baselines and ablation chapters."
)

# %% [markdown]
# ## The paper's own network, once, on a GPU
#
# The `paper` profile (the standard U-Net of width 64, 31 M parameters, Adam
# at 5e-5 decayed by 0.98 per epoch) ran once, seed 0, on an NVIDIA H100 lent
# for 15 minutes (`benchmarks/gpu_paper_profile.py`; files and details in
# `results/gpu/README.md`). It stopped at its time budget after **104 of the
# 150 epochs**, with the learning rate at 6.2e-6 (the schedule ends at 2.4e-6)
# and the loss flat. MoNuSeg test split, percent, connected components as in
# the paper (read from `results/gpu/scores.csv`; the `cpu` row is the
# committed three-seed selection study of chapter 09, `results/cpu/selection_*`,
# whose network the row names; the paper's rows are its Table 1):

# %%
gpu = pd.read_csv(f"{gpu_results_dir}/scores.csv")
gpu_info = json.loads(Path(gpu_results_dir, "info.json").read_text())
selection, selection_info = load_results(results_dir, kind=SELECTION)
columns = ["precision", "recall", "dice", "aji"]


def gpu_row(stage):
    return (gpu[(gpu.stage == stage) & (gpu.method == "cc")][columns].mean() * 100).round(1)


cpu_runs = selection[(selection.config == "paper: connected components") & (selection.split == "test")]
cpu_runs = cpu_runs.groupby("run")[columns].mean() * 100
gpu_table = pd.DataFrame({
    "SSimNet w/o fine-tuning, `paper` network on the GPU": gpu_row("test"),
    "SSimNet, `paper` network on the GPU": gpu_row("test_ft"),
    f"SSimNet w/o fine-tuning, {study_network(selection_info)}, mean of {len(cpu_runs)} seeds": cpu_runs.mean().round(1),
    "paper, SSimNet w/o fine-tuning (reported)": pd.Series({m: TABLE1["SSimNet w/o ft"][m][0] for m in columns}),
    "paper, SSimNet (reported)": pd.Series({m: TABLE1["SSimNet"][m][0] for m in columns}),
}).T
gpu_table

# %% tags=["hide-input"]
Markdown(
    f"The network of {gpu_info['epochs']} epochs on the GPU scores AJI {gpu_table.iloc[0].aji:.1f}, against "
    f"{gpu_table.iloc[2].aji:.1f} for the `cpu` profile's far smaller network: neither the network nor the schedule "
    f"explains the AJI gap to the paper ({gpu_table.iloc[3].aji:.1f}). Fine-tuning at the paper's decayed rate "
    f"changes Dice by {gpu_table.iloc[1].dice - gpu_table.iloc[0].dice:+.1f} and AJI by "
    f"{gpu_table.iloc[1].aji - gpu_table.iloc[0].aji:+.1f}, where the paper reports "
    f"{gpu_table.iloc[4].dice - gpu_table.iloc[3].dice:+.1f} and {gpu_table.iloc[4].aji - gpu_table.iloc[3].aji:+.1f}. "
    f"What limits the method here is the pseudo labels it learns from."
)

# %% [markdown]
# ## Per-image spread
#
# {numref}`fig-report-spread`: Each test image's AJI and Dice for every method (all runs pooled): the
# dataset means above hide a wide spread between images.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "AJI and Dice of every test image for every method, all runs pooled.", "name": "fig-report-spread"}}
order = [k for k in names if k in set(per_image.method)]
fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
for ax, metric in zip(axes, ("dice", "aji")):
    ax.boxplot([100 * per_image.loc[per_image.method == k, metric] for k in order], orientation="horizontal")
    ax.set_yticks(range(1, len(order) + 1), [names[k] for k in order], fontsize=9)
    ax.set_xlabel(f"{metric.upper()} per image (%)")
    ax.grid(axis="x", alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Wall time per stage
#
# Wall time of each notebook in the run that collected these results, from
# `ssimnet book`. A stage whose inputs had not changed since an earlier run
# was read back from its cache and took little time; the compute times above
# are the ones measured when each stage was computed.

# %%
if info["stage_seconds"]:
    display(pd.Series(info["stage_seconds"], name="seconds", dtype=float).round(1).to_frame())
else:
    display(Markdown("*Not recorded: these results were collected outside `ssimnet book`.*"))

# %% [markdown]
# ## Library versions

# %%
pd.Series({"python": info["python"], **info["libraries"]}, name="version").to_frame()

# %% [markdown]
# ## Exercises

# %% [markdown]
# ```{exercise-start}
# :label: ex-report-read
# ```
#
# Which rows of Table 1 does this reproduction get closest to the paper, and
# which furthest? Give one reason for the largest gap.
#
# ```{exercise-end}
# ```
#
# ```{solution-start} ex-report-read
# :class: dropdown
# ```
#
# Compare the `(paper)` and `(this run)` rows of each method above. The
# per-image clustering baselines need no training and land closest. The
# largest gaps are in the rows that learn from pseudo labels. The paper's own
# network and schedule, trained on a GPU (the section above), do not close
# them, so the network's size and epochs are not the reason: the labels it
# learns from are where to look. `studies/attribution.py` replaces one stage
# of them at a time with what the ground truth says, to measure which.
#
# ```{solution-end}
# ```
