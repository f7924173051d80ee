"""One helper per kind of checkpoint error, so each sentence is written once.

Each helper returns the exception (``raise missing_key(...)``), naming the
problem and, when given, the fix (often a row of :mod:`.messages`). The
kinds: a file of the wrong kind, a key a state dict lacks, a key of the
wrong shape, keys nothing has a place for.
"""
from typing import Iterable, Optional, Sequence, Type

__all__ = [
    'CheckpointMismatchError', 'wrong_file_kind', 'missing_key',
    'shape_mismatch', 'unknown_keys'
]


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model it is loaded into."""


def _join(*parts: Optional[str]) -> str:
    return ' '.join(p for p in parts if p)


def wrong_file_kind(source: str,
                    found: str,
                    fix: str = '',
                    error: Type[Exception] = ValueError) -> Exception:
    """``{source} {found}`` (e.g. ``holds a list, not a state dict``)."""
    return error(_join(f'{source} {found}', fix))


def missing_key(source: str,
                key: str,
                shape: Optional[Sequence[int]] = None,
                fix: str = '',
                error: Type[Exception] = CheckpointMismatchError) -> Exception:
    """``{source} lacks '{key}' (shape ...), which the model needs.``"""
    shape_text = '' if shape is None else f' (shape {tuple(shape)})'
    return error(
        _join(f"{source} lacks '{key}'{shape_text}, which the model needs.",
              fix))


def shape_mismatch(source: str,
                   key: str,
                   got: Optional[Sequence[int]],
                   want: object,
                   fix: str = '',
                   error: Type[Exception] = CheckpointMismatchError,
                   where: str = 'the model') -> Exception:
    """``'{key}' has shape {got} in {source} but {want} in {where}.``"""
    got = None if got is None else tuple(got)
    return error(
        _join(f"'{key}' has shape {got} in {source} but {want} in {where}.",
              fix))


def unknown_keys(source: str,
                 keys: Iterable[str],
                 fix: str = '',
                 error: Type[Exception] = CheckpointMismatchError
                 ) -> Exception:
    """``{source} holds N tensor(s) the model has no place for, first ...``"""
    keys = list(keys)
    return error(
        _join(
            f'{source} holds {len(keys)} tensor(s) the model has no place '
            f"for, first '{keys[0]}'.", fix))
