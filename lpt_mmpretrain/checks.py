"""One helper per kind of argument check, so each sentence is written once.

The bottom floor of the package: it imports nothing from ``lpt_mmpretrain``.
The kinds (each helper raises, or returns the exception to raise):

=====================  ===================================================
``check_min``          ``{name} must be >= {low}, got {value}.`` (or ``>``)
``check_fraction``     ``{name} must be in [0, 1), got {value}.``
``check_choice``       ``{name} must be one of {choices}, got {value!r}.``
``check_int``          ``{name} must be a positive integer, got {value!r}.``
                       (``non-negative`` with ``low=0``)
``shape_error``        ``{who} expects {what} of shape {want}, got {got}.``
=====================  ===================================================
"""
import numbers
from typing import Sequence, Type

__all__ = [
    'check_min', 'check_fraction', 'check_choice', 'check_int', 'shape_error'
]


def check_min(name: str,
              value,
              low,
              strict: bool = False,
              prefix: str = '',
              error: Type[Exception] = ValueError) -> None:
    """Raise ``{prefix}{name} must be >= {low}, got {value}.`` if
    ``value < low`` (``> {low}`` and ``value <= low`` when ``strict``)."""
    if value <= low if strict else value < low:
        sign = '>' if strict else '>='
        raise error(f'{prefix}{name} must be {sign} {low}, got {value}.')


def check_fraction(name: str, value) -> None:
    """Raise ``{name} must be in [0, 1), got {value}.`` unless it is."""
    if not 0 <= value < 1:
        raise ValueError(f'{name} must be in [0, 1), got {value}.')


def check_choice(name: str, value, choices, prefix: str = '') -> None:
    """Raise ``{prefix}{name} must be one of {choices}, got {value!r}.``
    unless ``value in choices``."""
    if value not in choices:
        raise ValueError(
            f'{prefix}{name} must be one of {choices}, got {value!r}.')


def check_int(name: str, value, low: int = 1) -> None:
    """Raise unless ``value`` is an integer (not a bool) >= ``low`` (0 or 1).

    The name is quoted as a config key: ```batch_size` must be a positive
    integer, got 0.``
    """
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or value < low):
        kind = 'positive' if low == 1 else 'non-negative'
        raise ValueError(f'`{name}` must be a {kind} integer, got {value!r}.')


def shape_error(who: str, what: str, want: str,
                got: Sequence[int]) -> ValueError:
    """``{who} expects {what} of shape {want}, got {tuple(got)}.``"""
    return ValueError(f'{who} expects {what} of shape {want}, got '
                      f'{tuple(got)}.')
