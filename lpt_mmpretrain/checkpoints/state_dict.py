"""The facts about LPT state dicts, and the one key / shape check.

- What LPT trains: the backbone's shared prompt (:data:`PROMPT_KEY`) and
  everything outside the backbone (prompt pool, keys, head); everything
  else of the backbone is the frozen pretrained ViT (:func:`is_trained_key`,
  :func:`frozen_state_dict`).
- :func:`backbone_fingerprint` names a set of frozen weights: prompt-only
  checkpoints record the fingerprint of the backbone they were trained on.
- :func:`check_state_dict`: the pretrained backbone, the phase-1 checkpoint
  that phase 2 starts from, a prompt-only file and a full LPT checkpoint are
  all checked by it, so a file that lacks a tensor the model needs, or holds
  one of another shape, fails with the key, both shapes and a fix, whichever
  client loads it (MMEngine's ``load_checkpoint`` and runner, MMPretrain's
  ``get_model`` / Inferencer / tools, plain ``load_state_dict``).
"""
import hashlib
from typing import Callable, Iterable, Mapping, Optional, Tuple, Union

import torch
import torch.nn as nn

from .errors import missing_key, shape_mismatch, unknown_keys

__all__ = [
    'PROMPT_KEY', 'is_trained_key', 'frozen_state_dict', 'check_state_dict',
    'tensors_fingerprint', 'backbone_fingerprint', 'encode_text', 'decode_text'
]

Shape = Tuple[int, ...]

# The backbone's trained tensor; the rest of the backbone is frozen.
PROMPT_KEY = 'prompt'


def is_trained_key(key: str) -> bool:
    """Whether a classifier state-dict key is trained (not the frozen ViT).

    Every key outside the backbone is (prompt pool, keys, head), and the
    backbone's shared prompt. Prompt-only checkpoints hold exactly these.
    """
    return not key.startswith('backbone.') or key == f'backbone.{PROMPT_KEY}'


def frozen_state_dict(backbone: Union[nn.Module,
                                      Mapping[str, torch.Tensor]]) -> dict:
    """The pretrained, frozen tensors of a backbone: all but the prompt.

    Args:
        backbone (nn.Module | Mapping): A backbone or its state dict.
    """
    state = backbone.state_dict() if isinstance(backbone,
                                                nn.Module) else backbone
    return {k: v for k, v in state.items() if k != PROMPT_KEY}


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
        digest.update(f'{key}|{tensor.dtype}|{tuple(tensor.shape)}\n'.encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def backbone_fingerprint(backbone: Union[nn.Module,
                                         Mapping[str, torch.Tensor]]) -> str:
    """The fingerprint of a backbone's frozen weights (all but the prompt).

    Args:
        backbone (nn.Module | Mapping): E.g. an :class:`LPTVisionTransformer`
            or its state dict.

    Returns:
        str: 64 hex digits, equal on every machine for equal weights.
    """
    return tensors_fingerprint(frozen_state_dict(backbone))


def _no_hint(key: str) -> str:
    return ''


def check_state_dict(
    own: Mapping[str, torch.Tensor],
    loaded: Mapping[str, object],
    source: str,
    keys: Optional[Iterable[str]] = None,
    hint: Callable[[str], str] = _no_hint,
    shape_ok: Optional[Callable[[str, Shape, Shape], bool]] = None,
    unexpected: Iterable[str] = ()
) -> None:
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
            raise missing_key(source, key, want, hint(key))
        value = loaded[key]
        got = tuple(value.shape) if torch.is_tensor(value) else None
        if got != want and not (got is not None and shape_ok is not None
                                and shape_ok(key, got, want)):
            raise shape_mismatch(source, key, got, want, hint(key))
    unexpected = list(unexpected)
    if unexpected:
        raise unknown_keys(source, unexpected, hint(unexpected[0]))


def encode_text(text: str) -> torch.Tensor:
    """Text as a uint8 tensor, so that a state dict holds tensors only."""
    return torch.tensor(list(text.encode('utf-8')), dtype=torch.uint8)


def decode_text(tensor: torch.Tensor) -> str:
    """Inverse of :func:`encode_text`."""
    return bytes(tensor.tolist()).decode('utf-8')
