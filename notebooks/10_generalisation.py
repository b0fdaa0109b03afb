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
# (chapter-10_generalisation)=
# # Beyond the paper: other labs' stains and scanners
#
# The earlier chapters measure everything on MoNuSeg, whose 30 training
# images the network learns from. A user's slides come from another lab and
# scanner: paler or darker, with little eosin, compressed, or scanned at
# another magnification. This chapter measures what that does to the `cpu`
# profile's networks and to the one `ssimnet segment` ships ({doc}`11_shipped_tool`
# tells how it was chosen), and what the tool does about it: it normalises each image's
# stains onto the training data's, with a guard for stains it cannot tell
# apart, it resamples an image to the network's pixel size when told the
# scan's, or, asked to, when the image's nuclei look half-size, and it gives
# the classical watershed's nuclei when the network is unsure of its own.
#
# ```{admonition} In this chapter
# :class: tip
# - **You will learn** how {term}`stain normalisation <Stain normalisation>` maps another lab's H&E onto
#   the training data's colours, where it breaks (eosin-poor, lavender or
#   faded slides, smears) and how a label-free guard decides when not to
#   trust it, why the pixel size of a scan matters as much as its colours,
#   how the tool tells a 20x scan by the size of its nuclei, and how it
#   tells, without labels, when to trust the classical watershed over the network,
#   but not which normalisation to trust.
# - **It runs** nothing heavy: one test image of this run's data is
#   normalised and stressed for the figures. The three studies it shows are
#   committed and read here (`studies/normalization.py`,
#   `studies/stain_stress.py`, `studies/resolution.py`); TNBC, the other
#   lab's data, chose nothing.
# - **Time:** {glue:md}`chapter_time`.
# ```

# %% tags=["parameters"]
data_dir = ""  # dataset root in the uniform layout, empty for synthetic data
run_dir = "runs/smoke"
profile = "smoke"
seed = 0
device = ""
workers = 2
results_dir = "results/cpu"  # committed MoNuSeg reference results: the studies this chapter shows


# %% tags=["remove-cell"]
from IPython.display import Markdown
from myst_nb import glue

from ssimnet.book.guide import reference_time

glue("chapter_time", Markdown(reference_time("10_generalisation", "results/cpu")), display=False)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from ssimnet.book import setup_chapter
from ssimnet.book.prose import moved
from ssimnet.book.report import normalization_table, study_network
from ssimnet.book.results import NORMALIZATION, load_results
from ssimnet.data import list_samples, read_image, read_label

chapter = setup_chapter(data_dir=data_dir, run_dir=run_dir, profile=profile, seed=seed, device=device, workers=workers)
data_root, config = chapter.data_root, chapter.profile

# %% [markdown]
# (sec-beyond-normalization)=
# ## Stain normalisation, and tissue from another lab
#
# A user's slides come from another lab and scanner, and are often paler
# than MoNuSeg's. TNBC (Naylor et al. 2019: 50 breast
# tiles from the Institut Curie, 4,027 nuclei, CC BY 4.0) stands in for such
# data: it was never used to choose anything. Its staining is visibly paler
# than MoNuSeg's; the study below measures how much of it a `cpu` network
# finds as it is, and after normalisation.
#
# {py:obj}`ssimnet.tool.normalize.StainNormalizer` maps each image onto one
# reference (Vahadane et al. 2016). It keeps the image's own stain densities and
# scales each stain so that its 99th percentile over tissue matches the
# reference's. The image is then rebuilt with the reference's stain colours.
# The package's reference, `STAIN_REFERENCE`, is the median over the 30
# MoNuSeg training images; no labels are read. A second variant only ever
# strengthens a pale stain (`min_scale=1`), so a dark image keeps its
# densities. {numref}`fig-normalization` shows a test image of this book's data
# before and after.

# %% mystnb={"figure": {"caption": "A test image as it is (left) and normalised onto the package's stain reference, brightening only as `ssimnet segment` does (right).", "name": "fig-normalization"}}
from ssimnet.tool.normalize import segment_normalizer

shown = read_image(list_samples(data_root, "test")[0].image_path)
fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
for ax, (title, picture) in zip(axes, [("as it is", shown), ("normalised", segment_normalizer(config).transform(shown))]):
    ax.imshow(picture[:400, :400])
    ax.set_title(title)
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# The study below is committed, not rerun by the book: one `cpu` network
# (seed 0, trained on the `"watershed"` candidates of the section above),
# scored with each normalisation on the MoNuSeg training and test splits and on
# TNBC, beside the classical watershed
# ({py:obj}`ssimnet.runs.experiments.normalization_study`,
# `studies/normalization.py`). The choice is made on the training columns
# alone. The brighten-only variant was added after the test figure of
# matching both ways had been seen; it was then chosen on the training split
# like the others, and every configuration's test and TNBC figures are shown.
# The last row is what `ssimnet segment` does now that it is faster: the same
# brightening, but each image's stains measured by the exact solver
# ({py:obj}`ssimnet.pseudo.stain.factorize_stains`, faster than
# scikit-learn's and reaching a slightly lower objective; its timings are in
# `benchmarks/README.md`) and the prediction made
# in tiles of up to 1024 pixels rather than 256. It was made for speed and
# scored once on each dataset.

# %%
normalization_runs, normalization_info = load_results(results_dir, kind=NORMALIZATION)
normalization = normalization_table(normalization_runs)
display(Markdown(f"The study's network: {study_network(normalization_info)}."))
normalization

# %% tags=["hide-input"]
norm_chosen = normalization.index[normalization.chosen][0]
raw, water, picked = (normalization.loc[k] for k in ("as it is", "classical watershed", norm_chosen))
recall = normalization_runs.groupby(["config", "split"]).recall.mean() * 100
tool = config.for_tool().inference
Markdown(
    f"As they are, the network recovers {recall['as it is', 'tnbc']:.1f} % of TNBC's nucleus pixels "
    f"({recall[norm_chosen, 'tnbc']:.1f} % once normalised). "
    f"On the training split **{norm_chosen}** scores the highest AJI ({picked['train aji']:.1f}, against "
    f"{raw['train aji']:.1f} for the images as they are). On the MoNuSeg test split it scores AJI "
    f"{picked['test aji']:.1f} against {raw['test aji']:.1f}; matching both ways scored "
    f"{normalization.loc['normalised', 'test aji']:.1f} there, with recall {recall['normalised', 'test']:.1f} % "
    f"against {recall[norm_chosen, 'test']:.1f} %. On TNBC, AJI {moved(raw['tnbc aji'], picked['tnbc aji'])} and "
    f"Dice {moved(raw['tnbc dice'], picked['tnbc dice'])}; the classical watershed scores AJI {water['tnbc aji']:.1f} "
    f"and Dice {water['tnbc dice']:.1f} there. `ssimnet segment` normalises with `--normalize {tool.normalize}` by "
    f"default (`InferenceConfig.normalize`), never weakening a stain (`normalize_min_scale` = "
    f"{tool.normalize_min_scale:g}); the book's reproduction chapters run with `normalize` = "
    f"`{config.inference.normalize}`."
)

# %% [markdown]
# (sec-beyond-stress)=
# ## Unusual staining: the stain stress test
#
# Normalisation assumes two stains it can tell apart. On slides with little
# eosin (lavender or bluish stroma, frozen sections, smears of nuclei on
# white) that assumption breaks: the separation calls hematoxylin the stain
# that absorbs more red light, and a lavender or blue counterstain does. It
# is then mapped onto the reference's hematoxylin, and the network sees
# nuclei everywhere. The stain stress test measures this on images whose
# labels stay true: each MoNuSeg test image, each TNBC tile and synthetic
# tiles with exact labels (their stains drawn anew for each tile) are
# unmixed, their stains changed, and rebuilt
# ({py:obj}`ssimnet.runs.stress.TRANSFORMS`); {numref}`fig-stress` shows
# the transforms on one image of this book's data.

# %% mystnb={"figure": {"caption": "One test image under each stress transform, its labels unchanged (half resolution aside, whose labels are halved too).", "name": "fig-stress"}}
from ssimnet.runs.stress import TRANSFORMS, guard_outcome, stress
from ssimnet.book.report import hematoxylin_only_counts, rerun_difference, stress_table, stress_verdict
from ssimnet.book.results import STAIN_GUARD_SELECTION, STAIN_STRESS
from ssimnet.config import STAIN_GUARD

sample = list_samples(data_root, "test")[0]
crop = (slice(0, 300), slice(0, 300))
fig, axes = plt.subplots(2, 7, figsize=(14, 4.4))
for ax, name in zip(axes.flat, TRANSFORMS):
    picture, _ = stress(read_image(sample.image_path)[crop], read_label(sample.label_path)[crop], name, seed=seed)
    ax.imshow(picture)
    ax.set_title(name, fontsize=10)
for ax in axes.flat:
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# The stain guard ({py:mod}`ssimnet.tool.stain_guard`) decides which stain is
# hematoxylin by *where* it is, not only by its colour: hematoxylin is dense
# in the nuclei and light elsewhere, a counterstain spread over the tissue.
# And when an image's two stain colours are close and about equally sparse,
# there is no counterstain: the two colours are shades of hematoxylin, and
# the image is normalised as hematoxylin alone (the two densities added,
# painted in the reference's hematoxylin, no eosin). Its settings
# (`STAIN_GUARD`) were chosen on MoNuSeg *training* images and their
# stressed copies, from four results of each (normalised as the separation
# names the stains, with the names swapped, not normalised, and as
# hematoxylin only); the table gives each transform's mean training AJI
# without the guard, with its third version (which left a one-stain image as
# it is), with its fourth and sixth (each chosen on these rows, then set
# aside, see below) and with the default.

# %%
selection, selection_info = load_results(results_dir, kind=STAIN_GUARD_SELECTION)
stress_frame, stress_info = load_results(results_dir, kind=STAIN_STRESS)
guard = {k: v for k, v in STAIN_GUARD._asdict().items() if k != "max_foreground"}
earlier_guards = {e["config"]: {"one_stain_way": "off", **{k: v for k, v in e["stain_guard"].items()
                                                            if k != "max_foreground"}}
                  for e in stress_info["earlier"]}
chosen_guard = pd.DataFrame({
    "without the guard": guard_outcome(selection, **{**guard, "order_margin": np.inf, "one_stain_angle": 0.0}),
    "third guard": guard_outcome(selection, **earlier_guards["default, third guard"]),
    "fourth guard": guard_outcome(selection, **earlier_guards["default, fourth guard"]),
    "sixth guard": guard_outcome(selection, **earlier_guards["default, sixth guard"]),
    "the guard (default)": guard_outcome(selection, **guard),
}).reindex(list(TRANSFORMS)).mul(100).round(1)
display(Markdown(f"Mean AJI over the {len(selection_info['images'])} training images and their stressed copies, "
                 "percent:"))
chosen_guard

# %% [markdown]
# The stress test itself is committed, not rerun by the book
# (`studies/stain_stress.py`): the shipped network as `ssimnet segment` runs
# it (`--normalize auto`, the default), with version 0.2's normaliser, with
# no normalisation, and the classical watershed, on every transformed copy.
# The network's three ways fall back to the watershed as `segment` now does
# ({ref}`sec-beyond-fallback`); the earlier defaults, scored before the
# fallback existed, do not.
# Six versions of the guard were scored here, each once, and all are shown;
# the default is the fifth, with the watershed fallback of
# {ref}`sec-beyond-fallback`. `default, before the fallback` is the fifth
# without it, the default until then. `default, pixel-size check` is the
# fifth with the pixel-size check of {ref}`sec-beyond-pixel-size`, scored
# once as the default and set aside; `default, pixel-size check and
# fallback` is the default with the same check, scored once and set aside
# too ({ref}`sec-beyond-pixel-default`). The first (`default, first guard`) judged where each
# stain is on the tissue mask alone. A unit test then showed it swapping the
# stains of a paler, bluer synthetic copy: in a pale image the tissue mask
# holds little but nuclei, over which hematoxylin is evenly spread. The
# second (`default, second guard`) judged every stained pixel instead, with
# its thresholds chosen again on the training rows. The third (`default,
# third guard`) acts only where the two masks agree, with the second's
# thresholds, and left a one-stain image as it is. The fourth (`default, fourth
# guard`) normalised a one-stain image as hematoxylin only, with the
# one-stain thresholds that score best on the training rows over a grid
# ({py:obj}`ssimnet.runs.guard_choice.choose_one_stain`), and the transform
# `faded, no eosin` joined the test. Its looser thresholds also fired on
# test images that the training images had not made them fire on (how often,
# and what that did, is below the tables). The fifth, the default, keeps the
# third's thresholds and takes only the way, hematoxylin only, which scores
# higher with them on the training rows. Under it a faded eosin-free image
# is still normalised as two stains: its two shades of hematoxylin lie
# further apart than the angle threshold. The sixth (`default, sixth
# guard`) also called an image one-stain when its second stain absorbs red
# as hematoxylin does (eosin absorbs green and little red,
# {py:obj}`ssimnet.runs.stress.red_share`), above a red share chosen on the
# training rows ({py:obj}`ssimnet.runs.guard_choice.choose_one_stain_red`;
# the other thresholds the fifth's), and was set aside as the fourth was
# (below the tables). So each choice after the first was made
# with the earlier versions' test figures in view, and they are not an
# unbiased estimate for it. A version scored before a transform was added
# has no figure for it (–), and the synthetic tiles were added with the
# fifth. AJI, percent:

# %% tags=["hide-input"]
before_fallback = "default, before the fallback"  # the fifth guard without the watershed fallback
rerun = "default, no pixel-size check"  # the same settings, scored before the pixel-size check existed
if rerun in set(stress_frame["config"]):
    gap = rerun_difference(stress_frame, config=rerun, reference=before_fallback)
    rerun_commit = next(e["commit"] for e in stress_info["earlier"] if e["config"] == rerun)[:7]
    stress_frame = stress_frame[stress_frame["config"] != rerun]
    display(Markdown(
        f"The committed results also hold `{rerun}`: the settings of `{before_fallback}`, scored at commit "
        f"`{rerun_commit}` before the pixel-size check was written. The study keeps an earlier version apart only "
        f"when its rows differ from the default's of the time, and {gap['differ']} of its {gap['rows']} rows do, "
        f"by at most {gap['largest'] * 100:.4f} points (Dice, AJI, PQ or foreground, percent). It is "
        f"`{before_fallback}`, and is not shown again."))

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Mean AJI under each stress transform, on MoNuSeg test, TNBC and synthetic tiles: segment's default, the classical watershed, version 0.2's normaliser and no normalisation; small grey dots are the earlier defaults (the guard's earlier versions, the default with the pixel-size check without and with the fallback, and the default before the watershed fallback). The dashed line is 85 % of the default's untransformed AJI.", "name": "fig-stress-aji"}}
stress_tables = {name: stress_table(stress_frame, dataset=name) for name in stress_frame["dataset"].unique()}
marks = {"default": ("o", "C0", 70), "classical watershed": ("s", "C3", 45), "0.2 normaliser": ("x", "C1", 45),
         "off": ("^", "C2", 40)}
shown_names = {"monuseg test": "MoNuSeg test", "tnbc": "TNBC", "synthetic test": "synthetic"}
fig, axes = plt.subplots(1, len(stress_tables), figsize=(4.6 * len(stress_tables) + 1.5, 5.4), sharey=True)
for ax, name in zip(axes, stress_tables):
    table, shown = stress_tables[name], shown_names.get(name, name)
    rows = np.arange(len(table))[::-1]
    for config in [c for c in table.columns if c.startswith("default, ")]:
        ax.scatter(table[config], rows, s=12, color="0.6", zorder=1, label="earlier defaults")
    for config, (marker, colour, size) in marks.items():
        ax.scatter(table[config], rows, marker=marker, color=colour, s=size, label=config, zorder=2)
    ax.axvline(0.85 * table.loc["none", "default"], color="C0", linestyle="--", linewidth=1)
    ax.set_yticks(rows, table.index)
    ax.set_title(shown)
    ax.set_xlabel("AJI (%)")
    ax.grid(axis="y", color="0.92")
handles = dict(zip(*axes[0].get_legend_handles_labels()[::-1]))  # one entry per label
fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
fig.tight_layout(rect=(0, 0.06, 1, 1))

# %% [markdown]
# Every figure of {numref}`fig-stress-aji`, with the earlier defaults by
# name, is in the tables below (AJI, percent; `v0.2` is version
# 0.2's normaliser).

# %% tags=["remove-input", "hide-output"]
short = {"0.2 normaliser": "v0.2", "classical watershed": "watershed"} | {
    c: c.removeprefix("default, ") for table in stress_tables.values() for c in table.columns if c.startswith("default, ")}
for name, table in stress_tables.items():
    display(Markdown(f"**{shown_names.get(name, name)}**"))
    display(table.rename(columns=short).astype(object).where(table.notna().to_numpy(), "–"))

# %% tags=["hide-input"]
verdicts = {name: stress_verdict(stress_frame, dataset=name) for name in stress_tables}


def _failed(verdict: pd.DataFrame) -> pd.DataFrame:
    """The transforms of a :func:`~ssimnet.book.report.stress_verdict` that miss the issue's bar."""
    return verdict[(verdict["kept"] < 85) & ~verdict["above reference"]]


def _held(verdict: pd.DataFrame) -> str:
    failed = _failed(verdict)
    if failed.empty:
        return "every transform keeps at least 85 % of the untransformed AJI or stays above the watershed"
    return ("these transforms keep less than 85 % of the untransformed AJI and fall below the watershed: "
            + ", ".join(f"{t} ({row.kept:.0f} %)" for t, row in failed.iterrows()))


def _flooded(verdict: pd.DataFrame) -> str:
    over = verdict[verdict["foreground"] > 1.5]
    if over.empty:
        return f"no transform predicts more than 1.5 times the true foreground (at most {verdict.foreground.max():.2f})"
    return "the predicted foreground exceeds 1.5 times the true one under " + ", ".join(
        f"{t} ({row.foreground:.2f})" for t, row in over.iterrows())


old_worst = {name: table["0.2 normaliser"].min() for name, table in stress_tables.items()}
fired = {name: stress_tables[name].loc[["none", "lavender"], ["default, third guard", "default, fourth guard"]]
         for name in ("monuseg test", "tnbc")}
versions = [c for c in stress_tables["tnbc"].columns if c.startswith("default, ")][::-1] + ["default"]
tnbc_stress = stress_tables["tnbc"]
below = tnbc_stress["classical watershed"]  # NaN (a transform a version was not scored on) compares False
display(Markdown("Each version of the default on TNBC (the guard's, the default with the pixel-size check without and with the fallback, and before the fallback): its AJI as it is (version 0.2's: "
                 f"{tnbc_stress.loc['none', '0.2 normaliser']:.1f}), and the number of transforms, of those it was scored on, "
                 "under which it falls below the watershed: " + "; ".join(
                     f"{v.removeprefix('default, ') if v != 'default' else 'the default'} "
                     f"{tnbc_stress.loc['none', v]:.1f}, {int((tnbc_stress[v] < below).sum())} of "
                     f"{int(tnbc_stress[v].notna().sum())}" for v in versions) + "."))
fourth = hematoxylin_only_counts(stress_frame, dataset="monuseg test", config="default, fourth guard")
display(Markdown(f"The fourth guard normalised {fourth.loc['none', 'hematoxylin only']} of the "
                 f"{fourth.loc['none', 'images']} MoNuSeg test images as they are, and "
                 f"{fourth.loc['lavender', 'hematoxylin only']} of {fourth.loc['lavender', 'images']} lavender ones, "
                 "as hematoxylin only."))
display(Markdown("The fourth guard against the third, AJI as it is and lavender: " + "; ".join(
    f"{shown_names[name]} {t.loc['none', 'default, fourth guard']:.1f} against {t.loc['none', 'default, third guard']:.1f} "
    f"and {t.loc['lavender', 'default, fourth guard']:.1f} against {t.loc['lavender', 'default, third guard']:.1f}"
    for name, t in fired.items()) + "."))
sixth_shown = ["none", "lavender", "faded, no eosin"]
one_stain = {config: hematoxylin_only_counts(stress_frame, dataset="monuseg test", config=config).loc[sixth_shown]
             for config in ("default, sixth guard", before_fallback)}
display(Markdown(
    f"Of the {one_stain[before_fallback].loc['none', 'images']} MoNuSeg test images as they are, lavender and faded "
    "without eosin, the sixth guard normalised "
    + ", ".join(map(str, one_stain["default, sixth guard"]["hematoxylin only"])) + " as hematoxylin only, the "
    "fifth " + ", ".join(map(str, one_stain[before_fallback]["hematoxylin only"])) + ". The sixth guard "
    "against the fifth (both without the fallback), AJI under the same three: " + "; ".join(
        f"{shown_names[name]} " + ", ".join(f"{stress_tables[name].loc[t, 'default, sixth guard']:.1f} against "
                                            f"{stress_tables[name].loc[t, before_fallback]:.1f}" for t in sixth_shown)
        for name in ("monuseg test", "tnbc")) + "."))
Markdown(" ".join(
    f"On {shown}, with the default {_held(verdicts[name])}; {_flooded(verdicts[name])}. "
    f"Version 0.2's normaliser fell to AJI {old_worst[name]:.1f} under its worst transform, the default to "
    f"{stress_tables[name]['default'].min():.1f}."
    for name, shown in shown_names.items() if name in verdicts))

# %% [markdown]
# (sec-beyond-resolution)=
# ## Pixel size: slides scanned at another magnification
#
# The network learns nuclei at the size they have in MoNuSeg, scanned at 40x
# (about 0.25 µm per pixel, `NETWORK_MPP`). Scanned at 20x, the same nuclei
# are half as wide: the network never saw nuclei that small, and the smallest
# fall under the minimum object size. StarDist's and QuPath's detectors ask
# for the image's pixel size for this reason, and so does
# `ssimnet segment --mpp`: the image is resampled to the network's pixel size,
# segmented there, and its label map brought back to the image's own grid
# ({py:obj}`ssimnet.tool.resample`). The study below is committed, not rerun by the
# book (`studies/resolution.py`): the MoNuSeg test images and their labels,
# resampled to the pixel size of a 20x and of a 60x scan, segmented by the
# `cpu` network of the section above with the tool's defaults, as they are and
# told their pixel size. It was made before the tool measured a pixel size
# itself (the next section): "as they are" is each image segmented at its own
# pixels, as `--mpp` with the network's own pixel size does today.

# %%
from ssimnet.book.report import study_table
from ssimnet.book.results import RESOLUTION

resolution_runs, resolution_info = load_results(results_dir, kind=RESOLUTION)
resolution = study_table(resolution_runs)
display(Markdown(f"The study's network: {study_network(resolution_info)}."))
resolution

# %% tags=["hide-input"]
as_is, told = resolution.iloc[0], resolution.iloc[1]
native = normalization.loc["segment's default (exact stain solver, large tiles)"]
Markdown(
    f"Without its pixel size, the network scores AJI {as_is['test at 20x aji']:.1f} on the 20x test images and "
    f"{as_is['test at 60x aji']:.1f} on the 60x ones; told it, {told['test at 20x aji']:.1f} and "
    f"{told['test at 60x aji']:.1f}, against {native['test aji']:.1f} on the test images as scanned (the table "
    f"above). Dice moves from {as_is['test at 20x dice']:.1f} to {told['test at 20x dice']:.1f} at 20x and from "
    f"{as_is['test at 60x dice']:.1f} to {told['test at 60x dice']:.1f} at 60x; PQ from "
    f"{as_is['test at 20x pq']:.1f} to {told['test at 20x pq']:.1f} at 20x and from {as_is['test at 60x pq']:.1f} "
    f"to {told['test at 60x pq']:.1f} at 60x."
)

# %% [markdown]
# (sec-beyond-pixel-size)=
# ### When the pixel size is not given: `--mpp auto`
#
# Many images come without their pixel size. Asked to (`--mpp auto`), `ssimnet segment`
# measures how large an image's nuclei are, label-free and two ways
# ({py:mod}`ssimnet.tool.pixel_size`). In the stain: its hematoxylin, read
# with the fixed Ruifrok and Johnston basis rather than the image's measured
# stains, is filtered by a scale-normalised Laplacian of Gaussian at scales a
# quarter octave apart, and the scale whose strongest responses (the 99.5th
# percentile) are largest is the nuclei's scale (a disc of radius r responds
# most at r/√2). As the network finds them: the median area of the nuclei it
# segments in the image as it is. When both are below a fraction of the same
# measure on the training images (`ENLARGE_BELOW` of `TRAINING_NUCLEUS_SCALE`,
# `AREA_BELOW` of `TRAINING_NUCLEUS_AREA`), the image is taken for a scan at
# half the network's magnification and segmented again, enlarged twice, with
# a one-line warning; its summary records the pixel size used. Either measure
# alone is fooled: a stain of small dark grains has a small scale, and a
# stain the network reads badly gives small nuclei. It makes one step only:
# 20x is the common lower magnification, and neither measure tells a 10x scan
# from a 20x scan of small nuclei. The references and fractions were chosen
# on MoNuSeg *training* images only (`studies/stain_stress.py --only pixel`):
# the references are the medians over the training images as they are, and
# the fractions the grid's best pair by mean training AJI over the stress
# transforms, each transform weighing the same. Every training image is
# scored as it is, every third under every transform, each segmented both as
# it is and enlarged twice. {numref}`fig-pixel-scale` shows what was chosen
# from. A first version asked the stain alone; on these rows it enlarged
# training images as they are that lost much by it (below the figure).

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Each training image, as it is, at half resolution and under the other stress transforms: its nuclei's scale in the stain and the median area of those the network finds as it is, both against the training images' medians. An image in the lower left box is enlarged twice; the colour says whether that raised its AJI.", "name": "fig-pixel-scale"}}
from ssimnet.book.report import enlarged_counts
from ssimnet.book.results import PIXEL_SIZE_SELECTION
from ssimnet.config import AREA_BELOW, ENLARGE_BELOW, TRAINING_NUCLEUS_AREA, TRAINING_NUCLEUS_SCALE
from ssimnet.runs.pixel_choice import choose_enlarge_below, enlarge_outcome, references
from ssimnet.runs.ties import middle_of_best
from ssimnet.runs.stress import by_way

pixel_rows, pixel_info = load_results(results_dir, kind=PIXEL_SIZE_SELECTION)
ref_scale, ref_area = references(pixel_rows)
best_pair, pair_means = choose_enlarge_below(pixel_rows, scale=ref_scale, area=ref_area)
per_image = by_way(pixel_rows, score="aji", measures=["sigma", "area"])
per_image["gain"] = per_image["enlarged twice"] - per_image["as it is"]
kinds = {"as it is": per_image["transform"] == "none", "half resolution": per_image["transform"] == "half resolution"}
kinds["other transforms"] = ~(kinds["as it is"] | kinds["half resolution"])
fig, ax = plt.subplots(figsize=(7.5, 4.6))
for (name, mask), marker in zip(kinds.items(), ("o", "s", "^")):
    rows_shown = per_image[mask]
    ax.scatter(rows_shown["sigma"] / ref_scale, rows_shown["area"] / ref_area, c=np.where(rows_shown["gain"] > 0, "C2", "C3"),
               marker=marker, s=28, alpha=0.7, label=name)
ax.axvline(ENLARGE_BELOW, color="0.3", linestyle="--", linewidth=1)
ax.axhline(AREA_BELOW, color="0.3", linestyle="--", linewidth=1)
ax.set_xscale("log", base=2)
ax.set_yscale("log", base=2)
ax.set_xlabel("scale in the stain / training median")
ax.set_ylabel("median area the network finds / training median")
legend = ax.legend(title="green: enlarging raises AJI, red: lowers it", fontsize=9, title_fontsize=9)
for handle in legend.legend_handles:
    handle.set_color("0.4")
fig.tight_layout()

# %% tags=["hide-input"]
refs = {"scale": ref_scale, "area": ref_area}
plain = enlarge_outcome(pixel_rows, **refs, enlarge_below=1.0, area_below=0.0)  # never enlarged
checked = enlarge_outcome(pixel_rows, **refs, enlarge_below=ENLARGE_BELOW, area_below=AREA_BELOW)
scale_only = enlarge_outcome(pixel_rows, **refs, enlarge_below=ENLARGE_BELOW, area_below=np.inf)
tied = middle_of_best(pair_means)[1]
fired = (per_image["sigma"] < ENLARGE_BELOW * ref_scale) & (per_image["area"] < AREA_BELOW * ref_area)
display(Markdown(
    f"The training images' nuclei have a median scale of {ref_scale:.2f} pixels and a median area of "
    f"{ref_area:.0f} pixels (`TRAINING_NUCLEUS_SCALE` {TRAINING_NUCLEUS_SCALE:.2f}, `TRAINING_NUCLEUS_AREA` "
    f"{TRAINING_NUCLEUS_AREA:.0f}); the best fractions are {best_pair['enlarge_below']:g} of the scale and "
    f"{best_pair['area_below']:g} of the area (`ENLARGE_BELOW` {ENLARGE_BELOW:g}, `AREA_BELOW` {AREA_BELOW:g})"
    + (f", the middle of the {len(tied)} pairs of the grid that tie" if len(tied) > 1 else "") +
    f". With them, the mean training AJI over the "
    f"transforms {moved(plain.mean() * 100, checked.mean() * 100)}; at half resolution it "
    f"{moved(plain['half resolution'] * 100, checked['half resolution'] * 100)}, and on the training images as "
    f"they are it {moved(plain['none'] * 100, checked['none'] * 100)}. It enlarges "
    f"{int(fired[kinds['as it is']].sum())} of the {int(kinds['as it is'].sum())} training images as they are "
    f"and {int(fired[kinds['half resolution']].sum())} of the {int(kinds['half resolution'].sum())} "
    f"half-resolution copies. The scale in the stain alone, below the same fraction, would have moved the "
    f"training images' AJI as they are from {plain['none'] * 100:.1f} to {scale_only['none'] * 100:.1f}."))

# %% [markdown]
# The check was then made the default and scored once, in the stain stress
# test above (`default, pixel-size check`): on every test image, as it is and
# under every transform. Under it, how many images were enlarged, and their
# AJI against the default of the time (`default, before the fallback`), which
# takes every image as it is:

# %% tags=["hide-input"]
with_check = "default, pixel-size check"
pixel_shown = ["none", "half resolution"]


def _enlarged(name: str, config: str, against: str) -> str:
    """How many images of one set `config` enlarged, as they are and at half resolution, and its AJI there
    against `against`'s."""
    counts = enlarged_counts(stress_frame, dataset=name, config=config)
    return f"{shown_names[name]}: " + ", ".join(
        f"{t} {counts.loc[t, 'enlarged']} of {counts.loc[t, 'images']} enlarged, AJI "
        f"{moved(stress_tables[name].loc[t, against], stress_tables[name].loc[t, config])}" for t in pixel_shown)


display(Markdown("; ".join(_enlarged(name, with_check, before_fallback) for name in stress_tables) + "."))
tnbc_plain = stress_tables["tnbc"].loc["none"]
Markdown(
    f"On TNBC as it is, the check moves AJI from {tnbc_plain[before_fallback]:.1f} to {tnbc_plain[with_check]:.1f}: "
    + ("it lowers the default's score on the other lab's data, which the tool's default must not, so it was set "
       "aside as the default and stays a choice, `--mpp auto`, for a batch of unknown magnification "
       "({ref}`sec-beyond-pixel-default` weighs it again beside the watershed fallback)."
       if tnbc_plain[with_check] < tnbc_plain[before_fallback] else
       "it does not lower the default's score on the other lab's data.")
)

# %% [markdown]
# (sec-beyond-fallback)=
# ## When the network is unsure: the watershed instead
#
# Under some transforms the network finds few nuclei, or nuclei it is
# unsure of, and the classical watershed, which reads hematoxylin with a fixed
# basis and learned nothing, scores higher ({numref}`fig-stress-aji`). How
# sure the network is of the nuclei it found needs no labels: the mean
# nucleus probability over their pixels, its *confidence*
# ({py:obj}`ssimnet.predict.nuclei.nucleus_confidence`). Below a threshold
# stored with the network (`fallback_below`), `ssimnet segment` gives the
# classical watershed's nuclei instead, says so in one line, and records the
# confidence and the fallback in the image's summary (`--fallback-below 0`
# never falls back). The threshold was chosen on MoNuSeg *training* images
# only (`studies/stain_stress.py --only fallback`): every training image as it
# is and every third under every transform, each segmented by the network
# and by the watershed. Of a grid of thresholds, the choice is the one with
# the best mean AJI over the transforms (each weighing the same) among those
# that do not lower the training images' mean as they are
# ({py:obj}`ssimnet.runs.fallback_choice.choose_fallback_below`).
# {numref}`fig-fallback` shows what it was chosen from.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Each training row: the network's confidence in the nuclei it found, and the watershed's AJI less the network's. Rows left of the dashed line, the chosen threshold, are given the watershed's nuclei.", "name": "fig-fallback"}}
from ssimnet.book.report import fallback_counts
from ssimnet.book.results import FALLBACK_SELECTION
from ssimnet.config import FALLBACK_BELOW
from ssimnet.runs.fallback_choice import choose_fallback_below, fallback_outcome

fallback_rows, fallback_info = load_results(results_dir, kind=FALLBACK_SELECTION)
best_below, below_table = choose_fallback_below(fallback_rows)
sure = by_way(fallback_rows, score="aji", measures=["confidence"])
sure["gain"] = (sure["classical watershed"] - sure["network"]) * 100
as_they_are = sure["transform"] == "none"
fig, ax = plt.subplots(figsize=(7.5, 4.2))
ax.scatter(sure.loc[as_they_are, "confidence"], sure.loc[as_they_are, "gain"], s=24, color="C0", label="as it is")
ax.scatter(sure.loc[~as_they_are, "confidence"], sure.loc[~as_they_are, "gain"], s=24, marker="^", color="C1",
           alpha=0.7, label="under a stress transform")
ax.axvline(FALLBACK_BELOW, color="0.3", linestyle="--", linewidth=1)
ax.axhline(0, color="0.8", linewidth=1)
ax.set_xlabel("the network's confidence (mean nucleus probability over its nuclei)")
ax.set_ylabel("watershed AJI less network AJI (points)")
ax.legend(fontsize=9)
fig.tight_layout()

# %% tags=["hide-input"]
never_fb = fallback_outcome(fallback_rows, below=0.0) * 100
chosen_fb = fallback_outcome(fallback_rows, below=FALLBACK_BELOW) * 100
change = (chosen_fb - never_fb).sort_values()
falls_train = sure["confidence"] < FALLBACK_BELOW
tied_below = middle_of_best(below_table.loc[below_table["allowed"], "mean over transforms"])[1]
Markdown(
    f"The chosen threshold is {best_below:g} (`FALLBACK_BELOW` {FALLBACK_BELOW:g})"
    + (f", the middle of {len(tied_below)} that tie" if len(tied_below) > 1 else "") +
    f". On the training rows it falls back on {int(falls_train.sum())} of {len(sure)}, "
    f"{int(falls_train[as_they_are].sum())} of the {int(as_they_are.sum())} images as they are. The mean training AJI "
    f"over the transforms {moved(never_fb.mean(), chosen_fb.mean())}; faded without eosin "
    f"{moved(never_fb['faded, no eosin'], chosen_fb['faded, no eosin'])}, half resolution "
    f"{moved(never_fb['half resolution'], chosen_fb['half resolution'])}"
    + (f"; {change.index[0]}, the transform it lowers most, {moved(never_fb[change.index[0]], chosen_fb[change.index[0]])}."
       if change.iloc[0] < 0 else ", and it lowers none.")
)

# %% [markdown]
# The shipped network learned from these very training images (their pseudo
# labels), so it may be surer of them than of images it never saw, and the
# same threshold may fall back more often elsewhere. The network's mean
# confidence on each set's images as they are:

# %% tags=["hide-input"]
confidence_as_is = {"MoNuSeg training": sure.loc[as_they_are, "confidence"].mean()} | {
    shown_names[name]: stress_frame[(stress_frame["dataset"] == name) & (stress_frame["config"] == "default")
                                    & (stress_frame["transform"] == "none")]["confidence"].mean()
    for name in stress_tables}
Markdown("; ".join(f"{name} {value:.3f}" for name, value in confidence_as_is.items()) + ".")

# %% [markdown]
# The fallback was then made the default and scored once, in the stain stress
# test above (the default; `default, before the fallback` is the same without
# it). How often it fell back, as it is and under the transforms where the
# network did worst before, and AJI against the default before it:

# %% tags=["hide-input"]
fallback_shown = ["none", "eosin removed", "faded, no eosin", "half resolution", "nuclei on white"]
falls = {name: fallback_counts(stress_frame, dataset=name) for name in stress_tables}
tnbc_falls = falls["tnbc"]


def _failing(config: str, name: str) -> int:
    """How many transforms fail the stress test's bar on one set under `config`."""
    return len(_failed(stress_verdict(stress_frame, dataset=name, config=config)))


def _helps(before: str, after: str) -> str:
    """How many transforms fail the stress test's bar on each set, under `before` and under `after`."""
    return ("the transforms that keep less than 85 % of the untransformed AJI and fall below the watershed went from "
            + "; ".join(f"{_failing(before, name)} to {_failing(after, name)} on {shown_names[name]}"
                        for name in stress_tables))


display(Markdown("; ".join(
    f"{shown_names[name]}: " + ", ".join(
        f"{t} {falls[name].loc[t, 'fallback']} of {falls[name].loc[t, 'images']}, AJI "
        f"{moved(stress_tables[name].loc[t, before_fallback], stress_tables[name].loc[t, 'default'])}"
        for t in fallback_shown)
    for name in stress_tables) + "."))
pq_as_is = {name: stress_frame[(stress_frame["dataset"] == name) & (stress_frame["transform"] == "none")]
            .groupby("config")["pq"].mean().mul(100) for name in stress_tables}
Markdown(
    f"With it, {_helps(before_fallback, 'default')}. Where it falls back, an image scores what the watershed scores, whose "
    f"instances are worse split: on TNBC as it is the default's PQ "
    f"{moved(pq_as_is['tnbc'][before_fallback], pq_as_is['tnbc']['default'])}, where its AJI "
    f"{moved(tnbc_plain[before_fallback], tnbc_plain['default'])}."
)

# %% [markdown]
# ### Which watershed the fallback runs
#
# The fallback reads hematoxylin as the classical baseline does: Ruifrok's
# fixed basis, on the image as it is. By then `segment` has measured the
# image's own stains, so two other watersheds come at no cost: Ruifrok's on
# the image as normalised (what the network saw), and Otsu's threshold on
# the hematoxylin density of the stains the guard checked. They were
# weighed on the same training rows, at the chosen threshold. Another
# replaces the classical watershed only if its mean AJI over the transforms
# is higher by the margin `WATERSHED_MARGIN` and it does not lower the
# images' as they are
# ({py:obj}`ssimnet.runs.fallback_choice.choose_fallback_watershed`).
# Nothing here was scored on test. The table gives each one's mean training
# AJI as the fallback (over the transforms, and on the images as they are),
# and alone over the transforms: had every training row been given its
# nuclei.

# %% tags=["hide-input"]
from ssimnet.runs.fallback_choice import WATERSHED_MARGIN, choose_fallback_watershed
from ssimnet.runs.stress import FALLBACK_WATERSHEDS

fallback_way, way_table = choose_fallback_watershed(fallback_rows, below=FALLBACK_BELOW)
ways_alone = sure.groupby("transform")[list(FALLBACK_WATERSHEDS)].mean().mul(100)
way_outcomes = pd.DataFrame({way: fallback_outcome(fallback_rows, below=FALLBACK_BELOW, watershed=way) * 100
                             for way in FALLBACK_WATERSHEDS})
pd.DataFrame({"as the fallback": way_table["mean over transforms"] * 100,
              "as they are": way_table["untransformed"] * 100,
              "alone": ways_alone.mean()}).loc[list(FALLBACK_WATERSHEDS)].round(1)

# %% tags=["hide-input"]
def _against_classical(way: str) -> str:
    """Where `way`, as the fallback, moves the training AJI most from the classical watershed's."""
    gap = (way_outcomes[way] - way_outcomes["classical watershed"]).sort_values()
    shown = [t for t in (gap.index[0], gap.index[-1]) if gap[t] != 0]
    return f"with `{way}`, " + " and ".join(
        f"{t} {moved(way_outcomes.loc[t, 'classical watershed'], way_outcomes.loc[t, way])}" for t in shown)


falls_by_transform = (sure["confidence"] < FALLBACK_BELOW).groupby(sure["transform"]).sum()
tinted = ["lavender", "blue", "yellow"]
tinted_alone = ways_alone.loc[tinted].mean()
Markdown(
    ("The fallback keeps the classical watershed" if fallback_way == "classical watershed" else
     f"The fallback's watershed would be `{fallback_way}`")
    + ". As the fallback, against the classical watershed: " + "; ".join(map(_against_classical, FALLBACK_WATERSHEDS[1:]))
    + f". The training rows fall back most under {falls_by_transform.idxmax()} ({falls_by_transform.max()} of "
    f"{int((sure['transform'] == falls_by_transform.idxmax()).sum())}). Alone, the mean training AJI on the "
    "tinted copies (" + ", ".join(tinted) + "): "
    + "; ".join(f"`{way}` {tinted_alone[way]:.1f}" for way in FALLBACK_WATERSHEDS)
    + f". There the classical watershed is {'the weakest' if tinted_alone.idxmin() == 'classical watershed' else 'not the weakest'}"
    f" of the three, but the training images' tinted copies fall back on {int(falls_by_transform[tinted].sum())} of "
    f"{int(sure['transform'].isin(tinted).sum())} rows. (The margin: {WATERSHED_MARGIN * 100:g} AJI point.)"
)

# %% [markdown]
# (sec-beyond-pixel-default)=
# ## The pixel-size check again, beside the fallback
#
# The pixel-size check was set aside because, as the default, it lowered
# TNBC's AJI as it is ({ref}`sec-beyond-pixel-size`). With the watershed
# fallback the default does something else with an image the network reads
# badly, so the check was weighed again, by the fallback's rule: on the
# training rows of {numref}`fig-pixel-scale` it raises the mean AJI over
# the transforms and does not lower the images' as they are (below). The
# rule for the test sets was written down before they were scored: make it
# the default only if the untransformed Dice and AJI of MoNuSeg test and TNBC
# are not lower, and no set's mean AJI over the transforms is lower. It was
# then scored once, as the default beside the fallback, in the stain stress
# test above (`default, pixel-size check and fallback`, against the default).
# This second scoring was made knowing the first: on TNBC as it is the check
# had enlarged one image, and that image now falls back.

# %% tags=["hide-input"]
with_both = "default, pixel-size check and fallback"
exact = {name: stress_frame[(stress_frame["dataset"] == name) & stress_frame["config"].isin(["default", with_both])]
         .groupby(["config", "transform"])[["dice", "aji"]].mean().mul(100) for name in stress_tables}
untransformed_kept = all(exact[name].loc[(with_both, "none")].ge(exact[name].loc[("default", "none")]).all()
                         for name in ("monuseg test", "tnbc"))
means = {name: exact[name]["aji"].unstack("transform").mean(axis=1) for name in stress_tables}
means_kept = all(means[name][with_both] >= means[name]["default"] for name in stress_tables)
lowered = (stress_tables["tnbc"][with_both] - stress_tables["tnbc"]["default"]).sort_values()
display(Markdown(
    f"On the training rows, the mean AJI over the transforms {moved(plain.mean() * 100, checked.mean() * 100)} "
    f"and as they are {moved(plain['none'] * 100, checked['none'] * 100)}. In the stress test: " + "; ".join(
        _enlarged(name, with_both, "default") + f"; the mean AJI over the transforms {moved(means[name]['default'], means[name][with_both])}"
        for name in stress_tables) + "."))
Markdown(
    "Untransformed Dice and AJI, to three decimals: " + "; ".join(
        f"{shown_names[name]} {exact[name].loc[('default', 'none'), 'dice']:.3f} / "
        f"{exact[name].loc[('default', 'none'), 'aji']:.3f} without the check, "
        f"{exact[name].loc[(with_both, 'none'), 'dice']:.3f} / {exact[name].loc[(with_both, 'none'), 'aji']:.3f} with it"
        for name in ("monuseg test", "tnbc"))
    + f". With it, {_helps('default', with_both)}. On TNBC it lowers AJI most under "
    + ", ".join(f"{t} ({stress_tables['tnbc'].loc[t, 'default']:.1f} to {stress_tables['tnbc'].loc[t, with_both]:.1f})"
                for t in lowered.index[:3] if lowered[t] < 0)
    + ": there the check took the nuclei of a restained image for half-size ones. "
    + ("The rule holds, and the check could be the default." if untransformed_kept and means_kept else
       "The rule does not hold" + ("" if untransformed_kept else " for the untransformed scores")
       + ("" if means_kept else (" nor" if not untransformed_kept else "") + " for every set's mean over the transforms")
       + ", so the check stays a choice, `--mpp auto`, and the default takes an image given no pixel size as it is.")
)

# %% [markdown]
# (sec-beyond-second-opinion)=
# ## A second opinion as hematoxylin only
#
# Faded slides without eosin and smears of nuclei on white are where the
# default keeps least of its AJI. The stain guard normalises an image as
# hematoxylin only when its two stain colours are close; a faded eosin-free
# image's two shades of hematoxylin lie further apart than that, so it is
# normalised as two stains. A label-free second opinion would catch it: when
# the guard leaves an image two-stain, segment it again normalised as
# hematoxylin only, and keep that result when the network is surer of its
# nuclei (their mean probability, as the fallback reads it) by more than a
# margin and they cover at most `STAIN_GUARD.max_foreground` of the image
# (without that cap, a result that collapses can be sure of itself); the
# fallback then judges the result kept. It costs a second inference on every
# such image. The margin was chosen on the training rows
# ({py:obj}`ssimnet.runs.guard_choice.choose_one_stain_margin`: the best
# mean AJI over the transforms among the margins that do not lower the
# images' as they are, the largest among ties), from the rows of
# {numref}`fig-second-opinion` (`studies/stain_stress.py --only second`).
# The rule for the test sets was written down before they were scored: make
# it the default only if the untransformed Dice and AJI of MoNuSeg test and
# TNBC are not lower (by more than 0.05 point), no set's mean AJI over the
# transforms is lower, and no set has more failing transforms. It was scored
# once, on MoNuSeg test and TNBC as they are.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Each image the guard left two-stain: how much surer the network is of it normalised as hematoxylin only, and what that does to its AJI. Training rows (grey; crosses: over the foreground cap, never kept) and the MoNuSeg test and TNBC images as they are. Right of the dashed line, the chosen margin, a result under the cap is kept.", "name": "fig-second-opinion"}}
from ssimnet.book.results import SECOND_OPINION_SELECTION, SECOND_OPINION_TEST
from ssimnet.runs.guard_choice import PSEUDO_CAP, choose_one_stain_margin, second_opinion_outcome

opinion_rows, _ = load_results(results_dir, kind=SECOND_OPINION_SELECTION)
opinion_test, opinion_info = load_results(results_dir, kind=SECOND_OPINION_TEST)
margin, margin_table = choose_one_stain_margin(opinion_rows)


def _gains(rows: pd.DataFrame) -> pd.DataFrame:
    """Per image and transform the guard left two-stain: hematoxylin only less two stains, in confidence and AJI."""
    wide = {m: by_way(rows[rows["tried"]], score=m, measures=[]).set_index(["image", "transform"])
            for m in ("confidence", "aji", "foreground")}
    return pd.DataFrame({"surer": wide["confidence"]["hematoxylin only"] - wide["confidence"]["two stains"],
                         "aji": (wide["aji"]["hematoxylin only"] - wide["aji"]["two stains"]) * 100,
                         "capped": wide["foreground"]["hematoxylin only"] > STAIN_GUARD.max_foreground})


fig, ax = plt.subplots(figsize=(7.5, 4.2))
train_gains = _gains(opinion_rows)
for capped, marker in ((False, "o"), (True, "x")):
    part = train_gains[train_gains["capped"] == capped]
    ax.scatter(part["surer"], part["aji"], s=14, color="0.6", marker=marker, zorder=1,
               label="training" + (", over the cap" if capped else ""))
for (name, part), colour in zip(opinion_test.groupby("dataset"), ("C0", "C3")):
    gains = _gains(part)
    ax.scatter(gains["surer"], gains["aji"], s=28, color=colour, zorder=2, label=shown_names.get(name, name))
ax.axvline(margin, color="k", linestyle="--", linewidth=1)
ax.axhline(0, color="0.8", linewidth=1)
ax.set_xlabel("confidence as hematoxylin only less as two stains")
ax.set_ylabel("AJI as hematoxylin only less as two stains (points)")
ax.legend(fontsize=9, frameon=False)
fig.tight_layout()

# %% tags=["hide-input"]
opinions = {"one opinion": {"margin": None}, "second opinion": {"margin": margin},
            "pseudo-label cap": {"margin": margin, "pseudo_cap": PSEUDO_CAP}}
opinion_train = pd.DataFrame({name: second_opinion_outcome(opinion_rows, **how)
                              for name, how in opinions.items()}).mul(100)
opinion_scores = {m: pd.DataFrame({name: second_opinion_outcome(opinion_test, score=m, by="dataset", **how)
                                   for name, how in opinions.items()}).mul(100) for m in ("dice", "aji")}


def _holds(variant: str) -> bool:
    """The rule's first part: neither set's untransformed Dice nor AJI lower by more than 0.05 point."""
    return all((opinion_scores[m][variant] >= opinion_scores[m]["one opinion"] - 0.05).all() for m in ("dice", "aji"))


per_image = pd.DataFrame({way: second_opinion_outcome(opinion_test, margin=m, by="image")
                          for way, m in (("one", None), ("second", margin))})
changed = per_image[per_image["one"] != per_image["second"]]
worst = (changed["second"] - changed["one"]).idxmin()
worst_rows = opinion_test[opinion_test["image"] == worst].set_index("way")
test_sets = {shown_names[name]: int((opinion_test["dataset"] == name).sum() // 3) for name in opinion_test["dataset"].unique()}
display(Markdown(
    f"The margin chosen: {margin:g}. On the training rows the mean AJI over the transforms "
    f"{moved(opinion_train['one opinion'].mean(), opinion_train['second opinion'].mean(), digits=2)}; "
    + ", ".join(f"{t} {moved(opinion_train.loc[t, 'one opinion'], opinion_train.loc[t, 'second opinion'])}"
                for t in opinion_train.index if round(opinion_train.loc[t, 'one opinion'], 1)
                != round(opinion_train.loc[t, 'second opinion'], 1))
    + f"; as they are it {moved(opinion_train.loc['none', 'one opinion'], opinion_train.loc['none', 'second opinion'], digits=2)}."))
Markdown(
    "On test, as they are (" + ", ".join(f"{n} {k} images" for n, k in test_sets.items()) + "), Dice and AJI: "
    + "; ".join(f"{shown_names[name]} Dice {moved(opinion_scores['dice'].loc[name, 'one opinion'], opinion_scores['dice'].loc[name, 'second opinion'], digits=2)}, "
                f"AJI {moved(opinion_scores['aji'].loc[name, 'one opinion'], opinion_scores['aji'].loc[name, 'second opinion'], digits=2)}"
                for name in opinion_scores["aji"].index)
    + f". The second opinion changed {len(changed)} of the {len(per_image)} images; on `{worst}` AJI "
    f"{moved(changed.loc[worst, 'one'] * 100, changed.loc[worst, 'second'] * 100)}, its nuclei covering "
    f"{worst_rows.loc['hematoxylin only', 'foreground']:.2f} of the image as hematoxylin only against "
    f"{worst_rows.loc['two stains', 'foreground']:.2f} as two stains (truly {worst_rows.loc['two stains', 'true_foreground']:.2f}), "
    f"under the cap of {STAIN_GUARD.max_foreground:g}. The network is surer of a result that doubles the nuclei, "
    "which the training images did not show. "
    + ("The rule does not hold, so `segment` keeps one opinion, and the stress test was not run with the second."
       if not _holds("second opinion") else "The untransformed scores hold; the stress test decides.")
)

# %% [markdown]
# A result that doubles the nuclei is what the issue's bar on the predicted
# foreground (at most 1.5 times the true one) is for, and each image has a
# label-free stand-in for its truth: its own pseudo labels. So a second cap
# was added after the collapse above, fixed and not chosen: a
# hematoxylin-only result is kept only if its foreground is at most
# `PSEUDO_CAP` times the share of the image its pseudo labels call nucleus
# ({py:obj}`ssimnet.runs.guard_choice.second_opinion_outcome`). Chosen on the
# training rows, the cap would be none, which is the second opinion above.
# The same rule was written down before it was scored, once, on the test
# sets as they are; as it was made knowing the first scoring, its test
# figures are not an unbiased estimate for it.

# %% tags=["hide-input"]
capped = "pseudo-label cap"
display(opinion_train.loc[opinion_train.nunique(axis=1).gt(1) | (opinion_train.index == "none")].round(1))
Markdown(
    f"With the pseudo-label cap of {PSEUDO_CAP:g}, the training images' mean AJI over the transforms "
    f"{moved(opinion_train['one opinion'].mean(), opinion_train[capped].mean(), digits=2)} (without it, "
    f"{opinion_train['second opinion'].mean():.2f}). On test as they are: " + "; ".join(
        f"{shown_names[name]} Dice {moved(opinion_scores['dice'].loc[name, 'one opinion'], opinion_scores['dice'].loc[name, capped], digits=2)}, "
        f"AJI {moved(opinion_scores['aji'].loc[name, 'one opinion'], opinion_scores['aji'].loc[name, capped], digits=2)}"
        for name in opinion_scores["aji"].index)
    + ". " + ("The first part of the rule holds; the default stays as it is until the stress test, not yet run "
              "with it, decides the rest." if _holds(capped) else
              "The rule does not hold for it either, and `segment` keeps one opinion.")
)

# %% [markdown]
# ## Summary

# %% tags=["remove-input"]
monuseg = verdicts.get("monuseg test")
Markdown("\n".join([
    f"- Stain normalisation, chosen on the training split: **{norm_chosen}**. On TNBC, which chose nothing, it moves "
    f"AJI from {raw['tnbc aji']:.1f} (the images as they are) to {picked['tnbc aji']:.1f}; the classical watershed "
    f"scores {water['tnbc aji']:.1f}.",
    f"- Under the stain stress test, on MoNuSeg test, {_held(monuseg)}." if monuseg is not None else
    "- The stain stress test's MoNuSeg rows are not in this run's results.",
    f"- Told the scan's pixel size, the network's AJI on 20x images moves from {as_is['test at 20x aji']:.1f} to "
    f"{told['test at 20x aji']:.1f}. Given `--mpp auto`, `ssimnet segment` enlarges an image whose nuclei look "
    f"half-size both in the stain and as the network finds them, a check chosen on training images: there their "
    f"mean AJI at half resolution {moved(plain['half resolution'] * 100, checked['half resolution'] * 100)}. On "
    f"TNBC as it is it moved the default's AJI from {tnbc_plain[before_fallback]:.1f} to {tnbc_plain[with_check]:.1f}. "
    f"Scored again beside the watershed fallback, it moved TNBC's mean AJI over the transforms from "
    f"{means['tnbc']['default']:.2f} to {means['tnbc'][with_both]:.2f}, and at half resolution from "
    f"{stress_tables['tnbc'].loc['half resolution', 'default']:.1f} to "
    f"{stress_tables['tnbc'].loc['half resolution', with_both]:.1f}; "
    + ("it could be the default." if untransformed_kept and means_kept else "it stays a choice."),
    f"- Where the network is unsure of the nuclei it found (confidence below {FALLBACK_BELOW:g}, chosen on training "
    f"images), `ssimnet segment` gives the classical watershed's. On TNBC it fell back on "
    f"{tnbc_falls.loc['none', 'fallback']} of {tnbc_falls.loc['none', 'images']} images as they are and moved their "
    f"AJI from {tnbc_plain[before_fallback]:.1f} to {tnbc_plain['default']:.1f}; {_helps(before_fallback, 'default')}.",
    f"- A second opinion as hematoxylin only, kept when the network is surer of it, moved the training images' mean "
    f"AJI over the transforms from {opinion_train['one opinion'].mean():.2f} to {opinion_train['second opinion'].mean():.2f} "
    f"and MoNuSeg test's as it is from {opinion_scores['aji'].loc['monuseg test', 'one opinion']:.2f} to "
    f"{opinion_scores['aji'].loc['monuseg test', 'second opinion']:.2f}"
    + ("" if _holds("second opinion") else ", and was set aside")
    + f". Capped by the image's own pseudo labels, it moved MoNuSeg test's from "
    f"{opinion_scores['aji'].loc['monuseg test', 'one opinion']:.2f} to {opinion_scores['aji'].loc['monuseg test', capped]:.2f}"
    + ("; the stress test decides whether it becomes the default." if _holds(capped) else ", and was set aside too."),
]))

# %% [markdown]
# ## Exercises

# %% [markdown]
# ```{exercise-start}
# :label: ex-generalisation-tnbc
# ```
#
# The stain guard's settings were chosen on MoNuSeg training images and
# their stressed copies. TNBC is right there, with labels, and it is the
# kind of data the guard is for. Why not choose on TNBC?
#
# ```{exercise-end}
# ```
#
# ```{solution-start} ex-generalisation-tnbc
# :class: dropdown
# ```
#
# TNBC is the book's measure of how the tool does on a lab it never saw. A
# setting chosen on TNBC is fitted to TNBC, and its TNBC score would then
# overstate what it does on the next lab's slides. Choosing on training
# images (and transformed copies of them) keeps TNBC a fair test; the
# chapter reports every configuration that was scored on it.
#
# ```{solution-end}
# ```
#
# ```{exercise-start}
# :label: ex-generalisation-mpp
# ```
#
# A slide scanned at 20x has about 0.5 µm per pixel. Without `--mpp`, how
# large do its nuclei look to a network trained at 0.25 µm per pixel, and
# what does `ssimnet segment --mpp 0.5` do about it?
#
# ```{exercise-end}
# ```
#
# ```{solution-start} ex-generalisation-mpp
# :class: dropdown
# ```
#
# Half as wide, so a quarter of the area: the network never saw nuclei that
# small, and the smallest fall under the minimum object size. With
# `--mpp 0.5` the image is resampled to the network's pixel size
# (`NETWORK_MPP`), segmented there, and the label map brought back to the
# image's own grid ({py:obj}`ssimnet.tool.resample`). With `--mpp auto`, the
# tool measures the nuclei ({ref}`sec-beyond-pixel-size`): an image whose
# nuclei look half-size is enlarged twice, as `--mpp 0.5` would.
#
# ```{solution-end}
# ```
#
# ```{exercise-start}
# :label: ex-generalisation-fallback
# ```
#
# The fallback's threshold was chosen among those that do not lower the
# training images' mean AJI as they are. Using `fallback_rows` and
# {py:obj}`ssimnet.runs.fallback_choice.fallback_outcome`, find the
# threshold with the best mean AJI over the transforms without that
# condition. What would it have cost the images as they are?
#
# ```{exercise-end}
# ```
#
# ```{solution-start} ex-generalisation-fallback
# :class: dropdown
# ```
#
# The table `below_table` (from
# {py:obj}`~ssimnet.runs.fallback_choice.choose_fallback_below`) holds both
# means for every threshold of the grid:
#
# ```python
# best_any = below_table["mean over transforms"].idxmax()
# below_table.loc[[0.0, FALLBACK_BELOW, best_any]]
# ```
#
# Compare the `untransformed` column of the two thresholds, and the `falls
# back` counts: the condition keeps the fallback from trading the common
# case, an image as it is, for the rare one, the same trade the tool's
# default must not make on TNBC as it is.
#
# ```{solution-end}
# ```
