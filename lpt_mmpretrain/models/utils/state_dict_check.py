"""One key / shape verification for every checkpoint LPT loads.

The pretrained backbone, the phase-1 checkpoint that phase 2 starts from, a
prompt-only file and a full LPT checkpoint are all checked by
:func:`check_state_dict`, so a file that lacks a tensor the model needs, or
holds one of another shape, fails with the key, both shapes and a fix,
whichever client loads it (MMEngine's ``load_checkpoint`` and runner,
MMPretrain's ``get_model`` / Inferencer / tools, plain ``load_state_dict``).

:func:`tensors_fingerprint` names a set of frozen weights: prompt-only
checkpoints record the fingerprint of the backbone they were trained on.
"""
import hashlib
from typing import Callable, Iterable, Mapping, Optional, Tuple

import torch

__all__ = [
    'CheckpointMismatchError', 'check_state_dict', 'tensors_fingerprint',
    'encode_text', 'decode_text'
]

Shape = Tuple[int, ...]


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model it is loaded into."""


def _no_hint(key: str) -> str:
    return ''


def check_state_dict(own: Mapping[str, torch.Tensor],
                     loaded: Mapping[str, object],
                     source: str,
                     keys: Optional[Iterable[str]] = None,
                     hint: Callable[[str], str] = _no_hint,
                     shape_ok: Optional[Callable[[str, Shape, Shape],
                                                 bool]] = None,
                     unexpected: Iterable[str] = ()) -> None:
    """Raise unless ``loaded`` has every key of ``own`` with its shape.

    Args:
        own (Mapping[str, Tensor]): What the model holds (e.g. its
            ``state_dict()``), restricted to the keys that must be loaded.
        loaded (Mapping): The checkpoint's state dict.
        source (str): Names the checkpoint in the messages.
        keys (Iterable[str], optional): Check only these keys of ``own``.
            Defaults to None (all).
        hint (Callable[[str], str]): Returns the likely fix for a key.
            Defaults to no hint.
        shape_ok (Callable, optional): ``(key, ckpt_shape, model_shape) ->
            bool`` for keys whose shapes may differ (e.g. a resized
            position embedding). Defaults to None (shapes must be equal).
        unexpected (Iterable[str]): Keys of ``loaded`` that the model has no
            place for; any makes the check fail. Defaults to ().

    Raises:
        CheckpointMismatchError: Naming the first problem and its fix.
    """
    for key in (own if keys is None else keys):
        want = tuple(own[key].shape)
        if key not in loaded:
            raise CheckpointMismatchError(
                f"{source} lacks '{key}' (shape {want}), which the model "
                f'needs. {hint(key)}'.rstrip())
        value = loaded[key]
        got = tuple(value.shape) if torch.is_tensor(value) else None
        if got != want and not (got is not None and shape_ok is not None
                                and shape_ok(key, got, want)):
            raise CheckpointMismatchError(
                f"'{key}' has shape {got} in {source} but {want} in the "
                f'model. {hint(key)}'.rstrip())
    unexpected = list(unexpected)
    if unexpected:
        raise CheckpointMismatchError(
            f'{source} holds {len(unexpected)} tensor(s) the model has no '
            f"place for, first '{unexpected[0]}'. {hint(unexpected[0])}".
            rstrip())


def tensors_fingerprint(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of a set of tensors.

    Equal weights give equal fingerprints on every machine; any changed
    value, shape, dtype or name gives another.

    Args:
        tensors (Mapping[str, Tensor]): E.g. a backbone's frozen weights.

    Returns:
        str: 64 hex digits.
    """
    digest = hashlib.sha256()
    for key in sorted(tensors):
        tensor = tensors[key].detach().cpu().contiguous()
        digest.update(
            f'{key}|{tensor.dtype}|{tuple(tensor.shape)}\n'.encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def encode_text(text: str) -> torch.Tensor:
    """Text as a uint8 tensor, so that a state dict holds tensors only."""
    return torch.tensor(list(text.encode('utf-8')), dtype=torch.uint8)


def decode_text(tensor: torch.Tensor) -> str:
    """Inverse of :func:`encode_text`."""
    return bytes(tensor.tolist()).decode('utf-8')
