"""Prompt-only checkpoints: what LPT training changed, without the ViT.

A prompt-only file is an MMEngine-style checkpoint,
``{'state_dict': {...}, 'meta': {'lpt_prompt_only': True, ...}}``, whose
state dict holds every entry of the model's state dict except the frozen,
pretrained backbone weights: the shared prompt (``backbone.prompt``), the
prompt pool and keys (``neck.*``) and the head. ``meta`` also records the
model config, the class names and the training class counts. With the
pretrained backbone checkpoint named in the model config, it rebuilds the
full model exactly.
"""
from typing import Optional

import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import _load_checkpoint

from .checkpoint import atomic_torch_save

__all__ = [
    'is_prompt_key', 'prompt_state_dict', 'save_prompt_checkpoint',
    'is_prompt_checkpoint', 'load_prompt_checkpoint'
]

PROMPT_ONLY_FLAG = 'lpt_prompt_only'


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


def is_prompt_key(key: str) -> bool:
    """Whether a state-dict key belongs in a prompt-only checkpoint.

    Every key outside the backbone does, and the backbone's shared prompt.
    """
    return not key.startswith('backbone.') or key == 'backbone.prompt'


def prompt_state_dict(model: nn.Module) -> dict:
    """The part of ``model.state_dict()`` that LPT training changes."""
    return {
        k: v.detach().cpu()
        for k, v in _unwrap(model).state_dict().items() if is_prompt_key(k)
    }


def save_prompt_checkpoint(model: nn.Module,
                           filename: str,
                           meta: Optional[dict] = None) -> None:
    """Write a prompt-only checkpoint atomically.

    Args:
        model (nn.Module): The (possibly wrapped) LPT model.
        filename (str): Where to write it.
        meta (dict, optional): Extra metadata (plain Python types only, so
            that ``torch.load(weights_only=True)`` reads it back).
    """
    meta = dict(meta or {})
    meta[PROMPT_ONLY_FLAG] = True
    atomic_torch_save(dict(state_dict=prompt_state_dict(model), meta=meta),
                      filename)


def is_prompt_checkpoint(checkpoint: dict) -> bool:
    """Whether a loaded checkpoint dict is a prompt-only one."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    return bool(isinstance(meta, dict) and meta.get(PROMPT_ONLY_FLAG))


def load_prompt_checkpoint(model: nn.Module,
                           filename: str,
                           map_location: str = 'cpu') -> dict:
    """Load a prompt-only checkpoint into a model whose backbone is loaded.

    The model's frozen backbone must already hold its pretrained weights
    (``model.backbone.init_weights()`` with the config's ``init_cfg``). Every
    other entry of the model's state dict must be in the file, with the same
    shape.

    Args:
        model (nn.Module): The (possibly wrapped) model.
        filename (str): The prompt-only checkpoint.
        map_location (str): As in ``torch.load``. Defaults to 'cpu'.

    Returns:
        dict: The loaded checkpoint (its ``meta`` included).
    """
    checkpoint = _load_checkpoint(filename, map_location=map_location)
    if not is_prompt_checkpoint(checkpoint):
        raise ValueError(
            f'{filename} is not a prompt-only checkpoint (its meta has no '
            f'`{PROMPT_ONLY_FLAG}`); load it as a full checkpoint instead.')
    model = _unwrap(model)
    state = checkpoint['state_dict']
    own = model.state_dict()
    for key, value in state.items():
        if key not in own:
            raise KeyError(
                f'`{key}` of the prompt-only checkpoint {filename} is not in '
                'the model: the config does not match the one it was '
                'trained with.')
        if value.shape != own[key].shape:
            raise ValueError(
                f'`{key}` has shape {tuple(value.shape)} in {filename} but '
                f'{tuple(own[key].shape)} in the model: the config does not '
                'match the one it was trained with.')
    missing = [k for k in own if is_prompt_key(k) and k not in state]
    if missing:
        raise KeyError(
            f'The prompt-only checkpoint {filename} lacks {missing[:5]} '
            f'({len(missing)} entries): the config does not match the one it '
            'was trained with.')
    model.load_state_dict(state, strict=False)
    return checkpoint
