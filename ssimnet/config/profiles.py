"""The predefined run profiles (``smoke``, ``cpu``, ``paper``) and the rows of the paper's Table 3.

Part of :mod:`ssimnet.config`, which re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .constants import FALLBACK_BELOW, TRAINING_NUCLEUS_AREA, TRAINING_NUCLEUS_SCALE
from .sections import (
    DEFAULT_TRAIN,
    BaselineConfig,
    InferenceConfig,
    Profile,
    SelfTrainConfig,
    SyntheticConfig,
    TrainConfig,
)

#: The paper's learning rate after its schedule (``lr * lr_decay ** epochs``
#: of :class:`TrainConfig`): the rate at which its per-image fine-tuning starts.
PAPER_FINAL_LR: float = DEFAULT_TRAIN.lr * DEFAULT_TRAIN.lr_decay**DEFAULT_TRAIN.epochs

#: The `cpu` profile's network (see below).
CPU_TRAIN: TrainConfig = TrainConfig(depth=4, width=8, epochs=6, batch_size=8, lr=1e-3)

#: How ``ssimnet segment`` segments by default (stored with the shipped network):
#: the whole image in tiles of up to 1024 pixels, its stains normalised unless
#: the stain guard finds one stain only (``normalize="auto"``), no
#: per-image fine-tuning (on MoNuSeg *training* images fine-tuning lowered AJI
#: at every learning rate tried: 27.3 without, 20.4-27.6 with), and the
#: references of ``--mpp auto`` (:mod:`ssimnet.tool.pixel_size`).
TOOL_INFERENCE: InferenceConfig = InferenceConfig(finetune_epochs=0, tile_size=1024, normalize="auto",
                                                  nucleus_scale=TRAINING_NUCLEUS_SCALE,
                                                  nucleus_area=TRAINING_NUCLEUS_AREA)

#: The name of the profile every command uses when given none: real images on a CPU.
DEFAULT_PROFILE: str = "cpu"

PROFILES: dict[str, Profile] = {
    # Synthetic data and a tiny network: every stage in a few minutes on two
    # cores; 15 epochs at a high learning rate are enough to segment the
    # synthetic nuclei.
    "smoke": Profile(
        name="smoke",
        synthetic=SyntheticConfig(n_train=6, n_test=3, shape=(512, 512)),
        train=TrainConfig(depth=3, width=8, epochs=15, batch_size=8, lr=3e-3),
        inference=InferenceConfig(instances="distance", finetune_epochs=2),
        tool_inference=replace(TOOL_INFERENCE, instances="distance"),
        baselines=BaselineConfig(runs=2, network_runs=1, kanezaki_channels=16, kanezaki_iterations=50),
    ),
    # MoNuSeg on two CPU cores: a narrow U-Net (width 8, 0.49 M parameters)
    # and 6 epochs keep the whole book (six trainings: SSimNet, the supervised
    # U-Net, two Table 3 variants, the learned separation network, and
    # self-training rounds) within about two hours on the 2-vCPU AVX2 hosts
    # of 2026-12 (benchmarks/bench_train_infer.py: 10.3 patches/s at width 8,
    # 3.2 at width 16; the reference run of 2026-11-24 trained width 16 for
    # 10 epochs on a host four times faster).  With 25x fewer epochs than the
    # paper, its learning rate of 5e-5 would leave the network far from
    # converged, so training starts at 1e-3; fine-tuning then starts at the
    # paper's final rate (PAPER_FINAL_LR), since at the end of this faster
    # schedule it fits each image's pseudo labels and lowers AJI (MoNuSeg
    # *training* images, width 16: AJI 27.3 without fine-tuning, 20.4 at
    # 6.8e-4, 21.0 at 1e-4, 25.1 at 2e-5, 27.6 at 5e-6).
    "cpu": Profile(
        name="cpu",
        synthetic=SyntheticConfig(n_train=30, n_test=14, shape=(1000, 1000)),
        # One self-training round (5 more epochs) for `ssimnet train` and
        # `ssimnet segment`, chosen on the MoNuSeg training split (AJI 45.5 +-
        # 1.5 -> 46.1 +- 0.4, distance watershed, 3 seeds); the book's
        # reproduction chapters do not use it.
        train=CPU_TRAIN,
        selftrain=SelfTrainConfig(rounds=1),
        inference=InferenceConfig(instances="distance", finetune_lr=PAPER_FINAL_LR),
        # `ssimnet train` and `ssimnet segment` add the boundary-aware target (4-pixel boundaries) and split nuclei
        # on its inside class, chosen on six MoNuSeg training images held out of training (studies/levers.py,
        # results/cpu/levers_*, seed 0).  They drop the nuclei whose mean probability is below 0.5, chosen on the
        # same six images (studies/object_probability.py, results/cpu/object_probability_*: Dice 78.0 -> 78.6,
        # AJI 53.0 -> 53.5, PQ 46.5 -> 48.6; 0.4-0.6 tried, 0.6 lowers recall by 7 points).  Where the network
        # is unsure of the nuclei it found, they are the classical watershed's (FALLBACK_BELOW, chosen for
        # this network on training images and their stressed copies).
        tool_train=replace(CPU_TRAIN, boundary_width=4),
        tool_inference=replace(TOOL_INFERENCE, instances="boundary", min_object_probability=0.5,
                               finetune_lr=PAPER_FINAL_LR, fallback_below=FALLBACK_BELOW),
        # Kanezaki's CNN at half resolution with 32 channels and at most 50 steps
        # per image (about 8 s per MoNuSeg image; Dice 61.6 on 3 training images).
        baselines=BaselineConfig(runs=3, network_runs=1, kanezaki_channels=32, kanezaki_iterations=50,
                                 kanezaki_scale=0.5, kanezaki_superpixel_area=25),
    ),
    # The paper's settings (Sec. 3.1): standard U-Net, 150 epochs, lr 5e-5
    # decayed by 0.98 per epoch, 5 epochs of per-image fine-tuning, connected
    # components.
    "paper": Profile(name="paper", synthetic=SyntheticConfig(n_train=30, n_test=14, shape=(1000, 1000))),
}


def get_profile(name: str) -> Profile:
    """Return the predefined profile called `name`.

    Raises
    ------
    ValueError
        If no profile has that name.
    """
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None


@dataclass(frozen=True)
class AblationVariant:
    """One row of the paper's Table 3: SSimNet with some components switched off.

    Attributes
    ----------
    name : str
        Row name in the book's tables.
    key : str
        Method key of its results (``"ssimnet"`` and ``"ssimnet_noft"`` are
        the Table 1 rows, shared with it).
    softening, purification, finetuning : bool
        Whether label softening (Eq. 4), data purification (Algorithm 1) and
        per-image fine-tuning are on.

    Examples
    --------
    >>> v = ABLATION[0]
    >>> v.name, v.components, v.method
    ('w/o label softening', (False, True, True), 'ssimnet')
    >>> v.profile(get_profile("smoke")).train.soft_labels
    False
    """

    name: str
    key: str
    softening: bool = True
    purification: bool = True
    finetuning: bool = True

    @property
    def components(self) -> tuple[bool, bool, bool]:
        """``(softening, purification, finetuning)``, the key of :data:`ssimnet.book.paper.TABLE3`."""
        return (self.softening, self.purification, self.finetuning)

    @property
    def method(self) -> str:
        """The method that evaluates it: with or without per-image fine-tuning."""
        return "ssimnet" if self.finetuning else "ssimnet_noft"

    def profile(self, base: Profile) -> Profile:
        """`base` with this variant's training switches (fine-tuning is the evaluation's, :attr:`method`)."""
        return replace(base, train=replace(base.train, soft_labels=self.softening, purify=self.purification))


#: The rows of Table 3, in the paper's order.
ABLATION: tuple[AblationVariant, ...] = (
    AblationVariant("w/o label softening", "ssimnet_no_softening", softening=False),
    AblationVariant("w/o data purification", "ssimnet_no_purification", purification=False),
    AblationVariant("w/o fine-tuning", "ssimnet_noft", finetuning=False),
    AblationVariant("SSimNet (all)", "ssimnet"),
)
