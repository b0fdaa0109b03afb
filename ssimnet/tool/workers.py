"""A segmenter in other processes: what of a network crosses to a worker, and each worker's own copy.

A batch's images (:mod:`ssimnet.tool.batch`) and a slide's tiles
(:mod:`ssimnet.tool.slide_files`) run in a pool of worker processes or on a
Dask cluster.  Each worker rebuilds the network once from what crossed
(:func:`portable`: a torch network's state, or the ONNX network's bytes) and
keeps it in :data:`WORKER` between tasks; a pool's worker dies with its parent.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..net.onnxnet import OnnxNetwork
from .segmenter import Segmenter, settings_for

if TYPE_CHECKING:
    from ..net.train import Trainer

__all__ = ["WORKER", "portable", "rebuild", "die_with", "worker_init", "worker_segmenter"]

#: This worker process's own state: its segmenter (and what it was rebuilt from), an open slide.
WORKER: dict[str, object] = {}


def portable(network: Trainer | OnnxNetwork) -> dict[str, object] | OnnxNetwork:
    """What of `network` crosses to another process: a torch network's state, or the ONNX network (its bytes)."""
    return network if isinstance(network, OnnxNetwork) else network.state()


def rebuild(carried: dict[str, object] | OnnxNetwork, device: str | None, threads: int | None) -> Segmenter:
    """A segmenter around the network `carried` holds (its settings come with each task)."""
    if isinstance(carried, OnnxNetwork):
        network: Trainer | OnnxNetwork = carried.with_threads(threads) if threads else carried
    else:
        import torch

        from ..net.train import Trainer

        if threads:
            torch.set_num_threads(threads)
        network = Trainer.from_state(carried, None, device=device)
    return Segmenter(network, settings_for(network.architecture))


def die_with(parent: int) -> None:
    """Have the kernel end this worker when `parent` dies, even by SIGKILL (Linux's PR_SET_PDEATHSIG);
    a worker whose parent is already gone ends now."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown is all there is
        pass
    if os.getppid() != parent:
        os._exit(1)


def worker_init(carried: dict[str, object] | OnnxNetwork, device: str | None, threads: int, parent: int) -> None:
    """A pool worker's start: it dies with `parent`, leaves Ctrl-C to it, and rebuilds the network once."""
    import signal

    die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    WORKER["segmenter"] = rebuild(carried, device, threads)


def worker_segmenter(carried: dict[str, object] | OnnxNetwork | None) -> Segmenter:
    """This worker's segmenter: the pool's (`carried` None), or one rebuilt once per Dask worker and network,
    with as many threads as the Dask worker has (its share of its machine's CPUs)."""
    if carried is not None and WORKER.get("carried") != id(carried):
        WORKER["segmenter"], WORKER["carried"] = rebuild(carried, None, _dask_threads()), id(carried)
    return WORKER["segmenter"]  # type: ignore[return-value]


def _dask_threads() -> int | None:
    """The threads of the Dask worker this runs in (``--nthreads``; 1 in ``segment --scheduler local``),
    None outside one."""
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return None
