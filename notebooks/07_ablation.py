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
# (chapter-07_ablation)=
# # Ablation: Table 3
#
# The paper's Table 3 switches off one component of SSimNet at a time:
#
# - **label softening** (Eq. 4): the BCE target is the hard candidate map
#   instead of the soft label (`TrainConfig.soft_labels = False`);
# - **data purification** (Algorithm 1): training uses every patch instead of
#   the fraction α with the lowest USMI (`TrainConfig.purify = False`);
# - **fine-tuning**: test images are predicted by the trained network
#   directly (`InferenceConfig.finetune_epochs = 0`).
#
# Each variant is a separate training (cached in the run directory), under
# the same protocol as Table 1.
#
# ```{admonition} In this chapter
# :class: tip
# - **You will learn** what each of the paper's three components (label
#   softening, data purification, per-image fine-tuning) adds, by switching
#   it off alone (Table 3), and which of the paper's effects keep their sign
#   here.
# - **It runs** one more training per ablated component, and the test
#   predictions of every variant.
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

glue("chapter_time", Markdown(reference_time("07_ablation", "results/cpu")), display=False)

# %%
import pandas as pd
from IPython.display import Markdown

from ssimnet.book import setup_chapter
from ssimnet.book.paper import TABLE3
from ssimnet.book.report import comparison_table, discrepancies, format_spread
from ssimnet.config import ABLATION
from ssimnet.metrics import summarise_runs
from ssimnet.runs.experiments import run_methods

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
# Dice and AJI in percent; the paper reports one value per cell, this project
# "mean ± std (best run)" over its runs, or the value alone for one run. The
# components each variant keeps are ticked.

# %%
marks = pd.DataFrame(
    [{"method": v.name, **{c: "✓" if on else "" for c, on in zip(("soft.", "pur.", "ft"), v.components)}}
     for v in ABLATION]
)
marks.merge(comparison_table(summaries, reported, metrics=("dice", "aji")), on="method").set_index(["method", "source"])

# %% [markdown]
# The paper's precision and recall beside this run's, then AJI+ and PQ of the
# same runs (not reported by the paper) and compute time:

# %%
pd.DataFrame(
    {n: {**{f"{m} (paper)": f"{reported[n][m]:.1f}" for m in ("precision", "recall")},
         **{m: format_spread(s, m) for m in ("precision", "recall", "aji_plus", "pq")},
         "compute time (s)": f"{seconds[n]:.0f}"}
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

# %% tags=["remove-input"]
agree = [c for c in effects.index if (effects.loc[c, "aji (this run)"] > 0) == (effects.loc[c, "aji (paper)"] > 0)]
Markdown(f"The sign of the AJI effect agrees with the paper's for {len(agree)} of {len(effects)} components"
         + (f" ({', '.join(agree)})." if agree else "."))

# %% [markdown]
# Reproduced values further than a standard deviation from the paper's
# (the paper gives no deviation for Table 3, so the tolerance is ours; the
# list is collapsed, as it repeats Table 3's numbers):

# %% tags=["remove-input", "hide-output"]
ablation_gaps = discrepancies(summaries, reported)
if (ablation_gaps.tolerance == 0).all():  # one run per variant: no spread, so no tolerance to show
    ablation_gaps = ablation_gaps.drop(columns="tolerance")
ablation_gaps.style.hide(axis="index").format(precision=1)

# %% [markdown]
# Likely reasons, where the gaps are large. Every variant with fine-tuning
# inherits what fine-tuning does under the profile's schedule (chapter 05),
# so the differences *between* rows, which are the ablation's point, are the
# better guide than each row's distance to the paper:

# %% tags=["remove-input"]
noft = "w/o fine-tuning"
gaps = {n: 100 * summaries[n].mean["aji"] - reported[n]["aji"] for n in summaries}  # this run minus the paper
tuned = [g for n, g in gaps.items() if n != noft]
finetune_effect = effects.loc["fine-tuning", "aji (this run)"]
Markdown(
    f"in this run fine-tuning changed AJI by {finetune_effect:+.1f} points (the paper: "
    f"{effects.loc['fine-tuning', 'aji (paper)']:+.1f}), softening changed AJI by {effects.loc['label softening', 'aji (this run)']:+.1f} points and "
    f"purification by {effects.loc['data purification', 'aji (this run)']:+.1f}, against the paper's "
    f"{effects.loc['label softening', 'aji (paper)']:+.1f} and {effects.loc['data purification', 'aji (paper)']:+.1f}. "
    f"Against the paper, AJI differs by {gaps[noft]:+.1f} points in the row without fine-tuning and by "
    f"{min(tuned):+.1f} to {max(tuned):+.1f} in the fine-tuned rows. "
    f"With {config.baselines.network_runs} run(s) per variant"
    + (", the tolerance is zero, so every difference is listed." if config.baselines.network_runs == 1 else ".")
)

# %% [markdown]
# ## Summary
#
# - Each variant switches one component off and is trained and scored under
#   the protocol of Table 1.
# - The effects table gives each component's change in Dice and AJI here and
#   in the paper; the sentence under it counts the components whose AJI effect
#   has the paper's sign.
# - Chapter 08 sets these numbers beside every other reproduced number, and
#   attributes the gap to the paper stage by stage.

# %% [markdown]
# ## Exercises

# %% [markdown]
# ```{exercise-start}
# :label: ex-ablation-noise
# ```
#
# With one network per variant, how would you tell whether a difference of
# one AJI point between two rows is real?
#
# ```{exercise-end}
# ```
#
# ```{solution-start} ex-ablation-noise
# :class: dropdown
# ```
#
# Train each variant with several seeds and compare the difference with the
# spread between seeds (chapter 09's three-seed study measures that spread
# for a `cpu` network), or pair the two variants image by image and
# bootstrap the mean of the per-image differences over the test images.
#
# ```{solution-end}
# ```
