"""Prompt-only checkpoints: what LPT training changed, without the ViT.

A prompt-only file is an MMEngine-style checkpoint,
``{'state_dict': {...}, 'meta': {'lpt_prompt_only': True, ...}}``, whose
state dict holds every trained entry of the model's state dict (the shared
prompt ``backbone.prompt``, the prompt pool and keys ``neck.*``, the head)
and, instead of the frozen pretrained backbone, its fingerprint and path
(``backbone.frozen_fingerprint``, ``backbone.frozen_source``: uint8 text
tensors, so the file holds tensors only). ``meta`` also records the model
config, the class names (``dataset_meta``, as MMPretrain's ``get_model``
reads them), the training class counts and the epoch / iteration of the
full checkpoint it sits next to.

Any loader that goes through ``load_state_dict`` (MMEngine's
``load_checkpoint``, ``load_from``, MMPretrain's ``get_model``, Inferencer
and tools) loads it like a full checkpoint: the backbone's load hook takes
the frozen weights from its pretrained checkpoint and refuses one with
another fingerprint (:class:`LPTVisionTransformer`).
"""
from typing import Optional

import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import (_load_checkpoint,
                                        _load_checkpoint_to_model)

from ..models.backbones.lpt_vision_transformer import (FINGERPRINT_KEY,
                                                       SOURCE_KEY)
from ..models.classifiers.lpt_classifier import is_trained_key
from ..models.utils.state_dict_check import (decode_text, encode_text,
                                             tensors_fingerprint)
from .compat.checkpoint import atomic_torch_save

__all__ = [
    'is_prompt_key', 'prompt_state_dict', 'save_prompt_checkpoint',
    'is_prompt_checkpoint', 'load_prompt_checkpoint', 'backbone_fingerprint',
    'PROMPT_ONLY_FLAG', 'export_prompt_checkpoint'
]

PROMPT_ONLY_FLAG = 'lpt_prompt_only'

# The one rule for what a prompt-only file holds.
is_prompt_key = is_trained_key


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


def backbone_fingerprint(backbone: nn.Module) -> str:
    """SHA-256 of a backbone's frozen weights (all but ``prompt``).

    Args:
        backbone (nn.Module): E.g. an :class:`LPTVisionTransformer`.

    Returns:
        str: 64 hex digits, equal on every machine for equal weights.
    """
    return tensors_fingerprint(
        {k: v
         for k, v in backbone.state_dict().items() if k != 'prompt'})


def _backbone_source(model: nn.Module) -> str:
    source = getattr(model.backbone, 'pretrained_checkpoint', None)
    if source is None:
        raise ValueError(
            'A prompt-only checkpoint needs the frozen backbone to come from '
            'a pretrained checkpoint, but model.backbone.init_cfg names '
            "none: set init_cfg=dict(type='Pretrained', checkpoint=...).")
    return str(source)


def prompt_state_dict(model: nn.Module) -> dict:
    """The trained part of ``model.state_dict()``, plus the backbone's
    fingerprint and pretrained checkpoint path."""
    model = _unwrap(model)
    state = {
        k: v.detach().cpu()
        for k, v in model.state_dict().items() if is_prompt_key(k)
    }
    state[f'backbone.{FINGERPRINT_KEY}'] = encode_text(
        backbone_fingerprint(model.backbone))
    state[f'backbone.{SOURCE_KEY}'] = encode_text(_backbone_source(model))
    return state


def save_prompt_checkpoint(model: nn.Module,
                           filename: str,
                           meta: Optional[dict] = None) -> None:
    """Write a prompt-only checkpoint atomically.

    Args:
        model (nn.Module): The (possibly wrapped) LPT model; its backbone
            must hold the pretrained weights named in its ``init_cfg``.
        filename (str): Where to write it.
        meta (dict, optional): Extra metadata (plain Python types only, so
            that ``torch.load(weights_only=True)`` reads it back). A
            ``classes`` entry also becomes ``dataset_meta.classes``.
    """
    state = prompt_state_dict(model)
    meta = dict(meta or {})
    meta[PROMPT_ONLY_FLAG] = True
    # The same values as the state dict's, without hashing the backbone twice.
    meta['backbone_fingerprint'] = decode_text(
        state[f'backbone.{FINGERPRINT_KEY}'])
    meta['backbone_checkpoint'] = decode_text(state[f'backbone.{SOURCE_KEY}'])
    if meta.get('classes') is not None:
        meta.setdefault('dataset_meta', dict(classes=list(meta['classes'])))
    atomic_torch_save(dict(state_dict=state, meta=meta), filename)


def is_prompt_checkpoint(checkpoint: dict) -> bool:
    """Whether a loaded checkpoint dict is a prompt-only one."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    return bool(isinstance(meta, dict) and meta.get(PROMPT_ONLY_FLAG))


def load_prompt_checkpoint(model: nn.Module,
                           filename: str,
                           map_location: str = 'cpu') -> dict:
    """Load a prompt-only checkpoint (MMEngine's ``load_checkpoint``).

    The frozen backbone comes from the model's pretrained checkpoint (or
    stays, if the model already holds it) and must have the fingerprint the
    file records; every trained tensor must fit.

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
    return _load_checkpoint_to_model(_unwrap(model), checkpoint)


def export_prompt_checkpoint(model: nn.Module, checkpoint: str,
                             filename: str) -> dict:
    """Write the prompt-only file of a full LPT checkpoint.

    The full checkpoint's frozen backbone must equal the model's pretrained
    checkpoint (``model.backbone.init_cfg``), or the prompt-only file could
    not reproduce it: then this fails naming both fingerprints.

    Args:
        model (nn.Module): The model built from the checkpoint's config
            (not initialised: nothing is trained or read before this).
        checkpoint (str): The full checkpoint.
        filename (str): The prompt-only file to write.

    Returns:
        dict: The metadata written.
    """
    model = _unwrap(model)
    full = _load_checkpoint(checkpoint, map_location='cpu')
    if is_prompt_checkpoint(full):
        raise ValueError(f'{checkpoint} is already a prompt-only file.')
    _load_checkpoint_to_model(model, full)
    trained_on = model.backbone.frozen_fingerprint()
    source = _backbone_source(model)
    model.backbone.load_pretrained(source)
    if model.backbone.frozen_fingerprint() != trained_on:
        raise ValueError(
            f'The backbone of {checkpoint} (fingerprint {trained_on}) is not '
            f'the pretrained {source} of the config (fingerprint '
            f'{model.backbone.frozen_fingerprint()}): set '
            'model.backbone.init_cfg.checkpoint to the backbone it was '
            'trained on.')
    old = full.get('meta') or {}
    meta = {
        k: old[k]
        for k in ('epoch', 'iter', 'dataset_meta', 'seed') if k in old
    }
    classes = (old.get('dataset_meta') or {}).get('classes')
    if classes is not None:
        meta['classes'] = list(classes)
    meta['full_checkpoint'] = str(checkpoint)
    save_prompt_checkpoint(model, filename, meta=meta)
    return meta
