"""SSimNet learning and per-image fine-tuning: paper Eq. (5) and Sec. 3.1.

The network is trained on the purified patches only, with

    Loss = lambda * BCE(p, y~) + (1 - lambda) * CE(F(x), z~),   lambda = 0.9,

where ``p = softmax(F(x))[1]`` is the nucleus probability, ``y~`` the soft
label (Eq. 4) and ``z~`` the Voronoi tri-label (label 2 ignored).  Adam, the
learning rate multiplied by 0.98 after every epoch, random flips and 90-degree
rotations.

Determinism: the weights are initialised from ``torch.manual_seed(seed)``, and
each epoch draws its patch order and augmentations from a generator seeded by
``(seed, epoch)`` -- so a run resumed from the checkpoint of epoch ``k``
continues exactly as the uninterrupted run would, and the same seed gives the
same weights on the CPU.  The device is chosen when training starts (CUDA if
present), never at import; on CUDA the forward pass runs in bfloat16 autocast.

Examples
--------
>>> import torch
>>> logits = torch.zeros(1, 2, 2, 2)                      # p = 0.5 everywhere
>>> soft = torch.full((1, 1, 2, 2), 0.5)
>>> tri = torch.tensor([[[1, 0], [2, 2]]])
>>> round(float(ssimnet_loss(logits, soft, tri, lam=0.9).total), 4)   # BCE = CE = log 2
0.6931
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..config import DEFAULT_SEED, DEFAULT_TRAIN, TrainConfig, split_train_dict
from ..pseudo.labels import PseudoLabels
from ..pseudo.purify import kept_patches
from ..pseudo.voronoi import IGNORE
from .augment import draw_hed_jitter, hed_jitter
from .boundary import boundary_target
from .model import Architecture, UNet, resolve_device
from .separation import IGNORE_DISTANCE, rim_distance_target

__all__ = [
    "CHECKPOINT_FORMAT",
    "output_channels",
    "PatchData",
    "Batch",
    "LossTerms",
    "ssimnet_loss",
    "TrainingDiverged",
    "Trainer",
]


#: Format tag of a checkpoint (:meth:`Trainer.state`).
CHECKPOINT_FORMAT: str = "ssimnet-checkpoint-1"


def output_channels(config: TrainConfig) -> int:
    """Output channels of the profile's U-Net: 2 (Eq. 5), one more for the learned separation's rim distance and
    one more (the last) for the boundary class."""
    return config.architecture.out_channels


@dataclass
class PatchData:
    """Training patches of one or more images, all in memory.

    Attributes
    ----------
    images : dict name -> (H, W, 3) uint8
    soft : dict name -> (H, W) float32
        BCE target: the soft label, or the hard candidate map when softening is off.
    voronoi : dict name -> (H, W) uint8
    patches : list of (name, row, col)
    size : int
        Patch side in pixels.
    distance : dict name -> (H, W) float32, optional
        Rim-distance targets of the learned separation output
        (:func:`ssimnet.net.separation.rim_distance_target`); None without it.
    boundary : dict name -> (H, W) float32, optional
        Boundary-class targets (:func:`ssimnet.net.boundary.boundary_target`);
        None without that output.
    """

    images: dict[str, np.ndarray]
    soft: dict[str, np.ndarray]
    voronoi: dict[str, np.ndarray]
    patches: list[tuple[str, int, int]]
    size: int
    distance: dict[str, np.ndarray] | None = None
    boundary: dict[str, np.ndarray] | None = None

    @classmethod
    def from_pseudo_labels(
        cls,
        items: dict[str, tuple[np.ndarray, PseudoLabels]],
        *,
        patches: list[tuple[str, int, int]] | None = None,
        size: int,
        keep: float | None = None,
        soft_labels: bool = True,
        distance_solidity: float | None = None,
        boundary_width: int = 0,
    ) -> PatchData:
        """Assemble patches from images and their pseudo labels.

        `patches` lists the patches to use (e.g. the purified set of a whole
        split); when None, each image's own patches are ranked by USMI and the
        fraction `keep` is used (:func:`ssimnet.pseudo.purify.kept_patches`, the
        per-image set ``SET_k`` of the paper's fine-tuning).  With `distance_solidity`, rim-distance targets of the
        candidates are added (:func:`ssimnet.net.separation.rim_distance_target`);
        with `boundary_width` > 0, boundary targets of that width
        (:func:`ssimnet.net.boundary.boundary_target`; the gap between touching
        nuclei is where the soft label is positive outside the candidates).
        """
        if patches is None:
            if keep is None:
                raise ValueError("give the patches to use, or the fraction `keep` of each image's patches")
            patches = [(name, *result.patches[i].corner) for name, (_, result) in items.items()
                       for i in kept_patches(result.patches, keep=keep)]
        if not patches:
            raise ValueError("no training patches")
        return cls(
            images={n: image for n, (image, _) in items.items()},
            soft={n: (r.soft if soft_labels else r.candidates.astype(np.float32)) for n, (_, r) in items.items()},
            voronoi={n: r.voronoi for n, (_, r) in items.items()},
            patches=list(patches),
            size=size,
            distance=None if distance_solidity is None else {
                n: rim_distance_target(r.candidates, min_solidity=distance_solidity) for n, (_, r) in items.items()
            },
            boundary=None if boundary_width <= 0 else {
                n: boundary_target(r.candidates, width=boundary_width, gap=(r.soft > 0) & ~r.candidates)
                for n, (_, r) in items.items()
            },
        )

    def batches(self, generator: torch.Generator, batch_size: int, *, augment: bool, stain_jitter: float = 0.0):
        """Yield :class:`Batch` tensors for one epoch, in an order drawn from `generator`.

        With `augment`, each patch is rotated and flipped at random; with
        `stain_jitter` > 0 its colours are also jittered in HED space
        (:func:`ssimnet.net.augment.hed_jitter`).  Every draw comes from
        `generator`, so an epoch is the same for the same generator state.
        """
        order = torch.randperm(len(self.patches), generator=generator).tolist()
        # the optional targets, by their field of Batch (3: distance, 4: boundary)
        targets = {slot: t for slot, t in ((3, self.distance), (4, self.boundary)) if t is not None}
        slots = [0, 1, 2, *targets]
        s = self.size
        for start in range(0, len(order), batch_size):
            columns: list[list[torch.Tensor]] = [[], [], [], [], []]
            for i in order[start : start + batch_size]:
                name, r, c = self.patches[i]
                crop = (slice(r, r + s), slice(c, c + s))
                tensors = [
                    torch.from_numpy(self.images[name][crop]).permute(2, 0, 1).float() / 255.0,
                    torch.from_numpy(self.soft[name][crop])[None].float(),
                    torch.from_numpy(self.voronoi[name][crop]).long(),
                ]
                tensors += [torch.from_numpy(target[name][crop]).float() for target in targets.values()]
                if augment:
                    k = int(torch.randint(4, (1,), generator=generator))
                    flip = bool(torch.randint(2, (1,), generator=generator))
                    tensors = [torch.rot90(t, k, dims=(-2, -1)) for t in tensors]
                    if flip:
                        tensors = [torch.flip(t, dims=(-1,)) for t in tensors]
                if stain_jitter > 0:
                    tensors[0] = hed_jitter(tensors[0], *draw_hed_jitter(generator, stain_jitter))
                for slot, t in zip(slots, tensors):
                    columns[slot].append(t)
            yield Batch(*(torch.stack(column) if column else None for column in columns))


class Batch(NamedTuple):
    """One training batch: images (B, 3, s, s), soft labels (B, 1, s, s), tri-labels (B, s, s) and,
    with the learned separation output, rim-distance targets (B, s, s), with the boundary output boundary
    targets (B, s, s)."""

    x: torch.Tensor
    soft: torch.Tensor
    tri: torch.Tensor
    distance: torch.Tensor | None = None
    boundary: torch.Tensor | None = None


class LossTerms(NamedTuple):
    """The total loss of Eq. (5) and its two terms (and the learned separation and boundary terms, 0 without them)."""

    total: torch.Tensor
    bce: torch.Tensor
    ce: torch.Tensor
    distance: torch.Tensor | float = 0.0
    boundary: torch.Tensor | float = 0.0


def ssimnet_loss(
    logits: torch.Tensor,
    soft: torch.Tensor,
    tri: torch.Tensor,
    *,
    lam: float = DEFAULT_TRAIN.loss_lambda,
    distance: torch.Tensor | None = None,
    distance_weight: float = DEFAULT_TRAIN.distance_weight,
    boundary: torch.Tensor | None = None,
    boundary_weight: float = DEFAULT_TRAIN.boundary_weight,
    ce_pixels: str = DEFAULT_TRAIN.ce_pixels,
) -> LossTerms:
    """Paper Eq. (5) for one batch, plus the learned separation term when asked for.

    Parameters
    ----------
    logits : (B, 2, H, W) or (B, 3, H, W)
        Background and nucleus logits, and the rim-distance logit when the
        network has the learned separation output.
    soft : (B, 1, H, W)
        Soft labels in [0, 1].
    tri : (B, H, W) long
        Voronoi tri-labels; 2 is ignored.  A batch with no labelled pixel
        contributes a CE term of 0.
    ce_pixels : {"labelled", "all"}
        The CE's mean is over the labelled pixels, or over all pixels (the
        ignored ones adding 0, so the CE shrinks by the labelled fraction).
    lam : float
        Weight of the BCE term.
    distance : (B, H, W), optional
        Rim-distance targets (:func:`ssimnet.net.separation.rim_distance_target`);
        pixels equal to ``IGNORE_DISTANCE`` are ignored.
    distance_weight : float
        Weight of the mean squared error between ``sigmoid`` of the third
        logit and `distance`, added to Eq. (5).
    boundary : (B, H, W), optional
        Boundary-class targets (:func:`ssimnet.net.boundary.boundary_target`),
        learned by the last logit.
    boundary_weight : float
        Weight of its binary cross-entropy over the pixels whose soft label
        is positive (the boundary class splits the nucleus class), added
        to Eq. (5).
    """
    logits = logits.float()
    classes = logits[:, :2]
    nucleus_logit = classes[:, 1:2] - classes[:, 0:1]  # log-odds of p = softmax(logits)[1]
    bce = F.binary_cross_entropy_with_logits(nucleus_logit, soft)
    if (tri != IGNORE).any():
        ce = (F.cross_entropy(classes, tri, ignore_index=IGNORE) if ce_pixels == "labelled"
              else F.cross_entropy(classes, tri, ignore_index=IGNORE, reduction="sum") / tri.numel())
    else:
        ce = classes.sum() * 0.0
    total = lam * bce + (1 - lam) * ce
    mse: torch.Tensor | float = 0.0
    if distance is not None and distance_weight != 0:
        if logits.shape[1] < 3 + (boundary is not None):
            raise ValueError("distance targets given, but the network has no distance output")
        valid = distance != IGNORE_DISTANCE
        error = (torch.sigmoid(logits[:, 2]) - distance) ** 2
        mse = error[valid].mean() if bool(valid.any()) else logits.sum() * 0.0
        total = total + distance_weight * mse
    rim: torch.Tensor | float = 0.0
    if boundary is not None and boundary_weight != 0:
        if logits.shape[1] < 3:
            raise ValueError("boundary targets given, but the network has no boundary output")
        nucleus = soft[:, 0] > 0
        rim = (F.binary_cross_entropy_with_logits(logits[:, -1][nucleus], boundary[nucleus])
               if bool(nucleus.any()) else logits.sum() * 0.0)
        total = total + boundary_weight * rim
    return LossTerms(total, bce, ce, mse, rim)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))


@dataclass
class Trainer:
    """A network with its optimiser and learning-rate schedule, trained epoch by epoch.

    Create one with :meth:`new` (fresh weights) or :meth:`from_state` (a
    checkpoint's contents); :meth:`state` gives what a checkpoint stores.
    """

    model: UNet
    config: TrainConfig
    seed: int
    device: torch.device
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    # The optimiser and schedule are built on first use (building Adam imports torch._dynamo, about
    # 2 s), so that a network loaded only to predict never pays for them; a checkpoint's states wait here.
    _pending: tuple[dict, dict] | None = field(default=None, repr=False)
    _optim: tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler] | None = field(default=None, repr=False)

    def _optimisation(self) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        if self._optim is None:
            optimizer = torch.optim.Adam(self.model.parameters(), lr=self.config.lr)
            scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=self.config.lr_decay)
            if self._pending is not None:
                optimizer.load_state_dict(self._pending[0])
                scheduler.load_state_dict(self._pending[1])
                self._pending = None
            self._optim = (optimizer, scheduler)
        return self._optim

    @property
    def architecture(self) -> Architecture:
        """The network's shape (as :attr:`ssimnet.net.onnxnet.OnnxNetwork.architecture`)."""
        return self.model.architecture

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """Adam over the network's weights (built on first use)."""
        return self._optimisation()[0]

    @property
    def scheduler(self) -> torch.optim.lr_scheduler.LRScheduler:
        """The exponential learning-rate schedule (built on first use)."""
        return self._optimisation()[1]

    @classmethod
    def new(cls, config: TrainConfig, *, seed: int = DEFAULT_SEED, device: str | torch.device | None = None) -> Trainer:
        """A freshly initialised network (weights from ``torch.manual_seed(seed)``)."""
        device = resolve_device(device)
        torch.manual_seed(seed)
        model = UNet(depth=config.depth, width=config.width, out_channels=output_channels(config),
                     boundary=config.boundary_width > 0)
        model = model.to(device=device, memory_format=torch.channels_last)
        return cls(model, config, seed, device)

    @classmethod
    def from_state(
        cls, state: dict, config: TrainConfig | None = None, *, device: str | torch.device | None = None
    ) -> Trainer:
        """Rebuild a trainer from :meth:`state`; `config` (default: the stored one) must match its architecture.

        Raises
        ------
        ValueError
            If the stored architecture differs from `config`'s.
        """
        stored = TrainConfig(**split_train_dict(state["config"])[0])  # an older checkpoint's inference fields apart
        config = config or stored
        arch = Architecture(**state["architecture"])
        asked = (config.depth, config.width, output_channels(config), config.boundary_width > 0)
        if (arch.depth, arch.width, arch.out_channels, arch.boundary) != asked:
            raise ValueError(
                f"checkpoint holds a U-Net of depth {arch.depth}, width {arch.width} and {arch.out_channels} outputs"
                f"{' (boundary last)' * arch.boundary}, but depth {config.depth}, width {config.width} and "
                f"{asked[2]} outputs{' (boundary last)' * asked[3]} were asked for"
            )
        trainer = cls.new(config, seed=state["seed"], device=device)
        trainer.model.load_state_dict(state["model"])
        # checked now, although Adam is built only on first use, so that a damaged checkpoint fails when loaded
        groups = [len(group["params"]) for group in state["optimizer"]["param_groups"]]
        parameters = len(list(trainer.model.parameters()))
        if groups != [parameters]:
            raise ValueError(f"its optimiser state covers {sum(groups)} parameters in {len(groups)} group(s), "
                             f"the network has {parameters}")
        trainer._pending = (dict(state["optimizer"]), dict(state["scheduler"]))
        trainer.epoch = int(state["epoch"])
        trainer.history = list(state["history"])
        return trainer

    def state(self) -> dict:
        """Everything needed to resume: weights, optimiser, schedule, epoch, settings, history."""
        return {
            "format": CHECKPOINT_FORMAT,
            "architecture": self.model.architecture.as_dict(),
            "config": self.config.__dict__.copy(),
            "seed": self.seed,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            **({"optimizer": self._pending[0], "scheduler": self._pending[1]} if self._pending is not None else
               {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}),
            "history": list(self.history),
        }

    def run_epoch(self, data: PatchData, *, freeze_norm: bool = False) -> dict[str, float]:
        """Train one epoch over `data`; step the learning-rate schedule; return its mean losses.

        With `freeze_norm`, batch normalisation keeps its running statistics
        (eval mode) while the weights train.

        Raises
        ------
        TrainingDiverged
            If a batch's loss is not finite; the weights of the last finished
            epoch are then unchanged in any checkpoint already written.
        """
        self.model.train()
        if freeze_norm:
            for module in self.model.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()
        start = time.perf_counter()
        generator = _epoch_generator(self.seed, self.epoch)
        lr = self.optimizer.param_groups[0]["lr"]
        sums = np.zeros(5)
        n = 0
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")
        for batch in data.batches(generator, self.config.batch_size, augment=self.config.augment,
                                  stain_jitter=self.config.stain_jitter):
            x = batch.x.to(self.device, memory_format=torch.channels_last)
            y, z = batch.soft.to(self.device), batch.tri.to(self.device)
            d = None if batch.distance is None else batch.distance.to(self.device)
            b = None if batch.boundary is None else batch.boundary.to(self.device)
            with autocast:
                logits = self.model(x)
            terms = ssimnet_loss(logits, y, z, lam=self.config.loss_lambda, distance=d,
                                 distance_weight=self.config.distance_weight, boundary=b,
                                 boundary_weight=self.config.boundary_weight, ce_pixels=self.config.ce_pixels)
            if not torch.isfinite(terms.total):
                raise TrainingDiverged(
                    f"loss became {float(terms.total.detach())} in epoch {self.epoch + 1}; training stopped "
                    f"(lower the learning rate, currently {lr:.2e})"
                )
            self.optimizer.zero_grad(set_to_none=True)
            terms.total.backward()
            self.optimizer.step()
            sums += [float(t.detach() if torch.is_tensor(t) else t) * x.shape[0] for t in terms]
            n += x.shape[0]
        self.scheduler.step()
        self.epoch += 1
        record = {"epoch": self.epoch, "loss": float(sums[0] / n), "bce": float(sums[1] / n), "ce": float(sums[2] / n),
                  "lr": float(lr), "patches": n, "seconds": time.perf_counter() - start}
        if self.config.distance_weight > 0:
            record["distance"] = float(sums[3] / n)
        if self.config.boundary_width > 0:
            record["boundary"] = float(sums[4] / n)
        self.history.append(record)
        return record

    def fit(
        self,
        data: PatchData,
        epochs: int,
        *,
        on_epoch_end: Callable[[Trainer], None] | None = None,
        progress: bool = True,
        desc: str = "training",
        freeze_norm: bool = False,
    ) -> Trainer:
        """Train until ``self.epoch == epochs`` (resumed trainers continue where they stopped)."""
        with tqdm(total=epochs, initial=self.epoch, desc=desc, unit="epoch", disable=not progress) as bar:
            while self.epoch < epochs:
                record = self.run_epoch(data, freeze_norm=freeze_norm)
                if on_epoch_end is not None:
                    on_epoch_end(self)
                bar.set_postfix(loss=f"{record['loss']:.4f}")
                bar.update()
        return self

    @property
    def finetune_lr(self) -> float:
        """Deprecated (0.1): :attr:`learning_rate`, where fine-tuning starts unless given a rate; goes in 0.3."""
        import warnings

        warnings.warn("Trainer.finetune_lr is deprecated: use Trainer.learning_rate, or InferenceConfig.finetune_lr",
                      DeprecationWarning, stacklevel=2)
        return self.learning_rate

    @property
    def learning_rate(self) -> float:
        """The schedule's learning rate where training stopped: where fine-tuning starts by default."""
        return float(self.optimizer.param_groups[0]["lr"])

    def finetune_copy(self, data: PatchData, epochs: int, *, lr: float | None = None, norm: str = "train",
                      progress: bool = False) -> Trainer:
        """A copy of this trainer fine-tuned for `epochs` more epochs on `data` (paper Sec. 2.2).

        The copy starts from these weights *and* this optimiser state (Adam's
        moments and the decayed learning rate), as the paper's "optimizer
        parameter saved in checkpoint"; this trainer is left unchanged.  With
        `lr`, the copy's learning rate starts there instead; with `norm`
        ``"frozen"``, batch normalisation keeps its statistics
        (:class:`ssimnet.config.InferenceConfig`'s ``finetune_lr`` and ``finetune_norm``).
        """
        if norm not in ("train", "frozen"):
            raise ValueError(f"norm must be 'train' or 'frozen', got {norm!r}")
        twin = Trainer.from_state(copy.deepcopy(self.state()), self.config, device=self.device)
        twin.history = []
        for group in twin.optimizer.param_groups:
            group["lr"] = self.learning_rate if lr is None else lr
        return twin.fit(data, twin.epoch + epochs, progress=progress, desc="fine-tuning", freeze_norm=norm == "frozen")
