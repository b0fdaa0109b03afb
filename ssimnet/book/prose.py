"""The words of the book's computed sentences that state a direction, chosen from the numbers they describe.

A sentence such as "AJI rises from 24.6 to 47.5" is built by a chapter
from its results; its verb must come from the same numbers, or a rerun that
reverses them would leave the prose contradicting the table beside it.

Examples
--------
>>> moved(24.6, 47.5)
'rises from 24.6 to 47.5'
>>> side(50.6, 55.6), spread_word(1.1, 1.5)
('below', 'within')
"""

from __future__ import annotations

__all__ = ["emphasis", "moved", "side", "spread_word"]


def moved(before: float, after: float, *, up: str = "rises", down: str = "falls", digits: int = 1) -> str:
    """``"<verb> from <before> to <after>"``, the verb `up`, `down` or "stays at" as the rounded numbers say.

    >>> moved(53.5, 51.1, up="gains", down="loses")
    'loses from 53.5 to 51.1'
    >>> moved(40.04, 40.01)
    'stays at 40.0'
    """
    a, b = round(before, digits), round(after, digits)
    if a == b:
        return f"stays at {a:.{digits}f}"
    return f"{up if b > a else down} from {a:.{digits}f} to {b:.{digits}f}"


def side(value: float, reference: float, *, digits: int = 1) -> str:
    """"above", "below" or "equal to": where `value` stands against `reference`, as rounded.

    >>> side(55.5, 54.4), side(46.8, 46.84)
    ('above', 'equal to')
    """
    a, b = round(value, digits), round(reference, digits)
    return "above" if a > b else "below" if a < b else "equal to"


def spread_word(difference: float, spread: float) -> str:
    """"within" when ``|difference|`` is at most `spread` (a standard deviation over seeds), else "beyond".

    >>> spread_word(-2.0, 1.5)
    'beyond'
    """
    return "within" if abs(difference) <= spread else "beyond"


def emphasis(name: str) -> str:
    """`name` in Markdown italics, its own asterisks escaped (a reading such as "FCM on L* of I^T").

    >>> emphasis("FCM on L* of I^T")
    '*FCM on L\\\\* of I^T*'
    """
    return "*" + name.replace("*", "\\*") + "*"
