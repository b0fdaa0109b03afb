"""Run profiles: every tunable setting of a run, in one place.

A profile is a frozen dataclass. Three are predefined:

``smoke``
    Synthetic data (the embedded default dataset), minutes on two CPU cores.
    This is what CI and a plain ``make book`` use.
``cpu``
    Real MoNuSeg with a reduced network and fewer epochs (about two hours on
    two cores).
``paper``
    The paper's settings (Sec. 3.1), meant for a GPU.

Later stages add their own sections (stain separation, purification, training)
to :class:`Profile`; modules never keep settings of their own as globals.

Examples
--------
>>> p = get_profile("smoke")
>>> p.name, p.synthetic.n_train > 0
('smoke', True)
>>> get_profile("cpu").synthetic.shape
(1000, 1000)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = ["SyntheticConfig", "Profile", "PROFILES", "get_profile"]


@dataclass(frozen=True)
class SyntheticConfig:
    """How the embedded synthetic H&E dataset is drawn (see :mod:`ssimnet.synthetic`).

    Attributes
    ----------
    n_train, n_test : int
        Number of tiles in the ``train`` and ``test`` splits.
    shape : tuple of int
        Tile height and width in pixels.
    seed : int
        Base seed; tile ``i`` of split ``s`` uses a seed derived from it, so the
        dataset is identical on every machine.
    """

    n_train: int = 6
    n_test: int = 3
    shape: tuple[int, int] = (512, 512)
    seed: int = 2023


@dataclass(frozen=True)
class Profile:
    """All settings of one run.

    Attributes
    ----------
    name : str
        Profile name, recorded with every result.
    synthetic : SyntheticConfig
        Dataset drawn when no data directory is given.
    seed : int
        Seed of the run (pseudo labels, training, baselines).
    """

    name: str
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    seed: int = 0

    def with_seed(self, seed: int) -> Profile:
        """Return a copy of this profile with another run seed."""
        return replace(self, seed=seed)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(name="smoke", synthetic=SyntheticConfig(n_train=6, n_test=3, shape=(512, 512))),
    "cpu": Profile(name="cpu", synthetic=SyntheticConfig(n_train=30, n_test=14, shape=(1000, 1000))),
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
