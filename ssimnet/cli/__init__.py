"""The ``ssimnet`` command line.

::

    ssimnet data convert {monuseg,cpm17} SRC DST [--split S]
    ssimnet data synth DST [--profile P]
    ssimnet pseudo-labels DATA_DIR --out RUN_DIR [--split S] [--profile P] [--workers N] [--quiet]
    ssimnet train DATA_DIR --out RUN_DIR [--profile P] [--seed N] [--device D] [--restart]
    ssimnet segment IMAGE|DIR|GLOB... --out DIR [--model CKPT | --adapt] [--finetune-epochs N] [--instances M]
                    [--min-object-probability P] [--fallback-below P] [--tta] [--device D]
                    [--[no-]normalize] [--mpp MPP] [--workers N] [--scheduler ADDRESS] [--overwrite]
    ssimnet segment --version
    ssimnet evaluate GT_DIR PRED_DIR [--csv FILE]
    ssimnet book [--profile P] [--data-dir D] [--run-dir R] [--seed N] [--device D] [--workers N] [--only NB] [--quiet]
    ssimnet publish [--run-dir R] [--results DIR]

Exit codes: 0 success, 1 a notebook failed or training diverged, 2 bad usage
or bad input (one line on stderr per bad file, naming it and the problem; in
a batch the good files are still done), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

from .common import CommandError
from .main import main, parser
from .segment import OVERRIDES

__all__ = ["main", "parser", "CommandError", "OVERRIDES"]
