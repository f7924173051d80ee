"""Prompt-only checkpoints: what LPT training changed, without the ViT.

A prompt-only file is an MMEngine-style checkpoint,
``{'state_dict': {...}, 'meta': {'lpt_prompt_only': True, ...}}``, whose
state dict holds every trained entry of the model's state dict
(:func:`is_trained_key`: the shared prompt ``backbone.prompt``, the prompt
pool and keys ``neck.*``, the head) and, instead of the frozen pretrained
backbone, its fingerprint and path (``backbone.frozen_fingerprint``,
``backbone.frozen_source``: uint8 text tensors, so the file holds tensors
only; read them with :func:`recorded_fingerprint` / :func:`recorded_source`).
They are written once, in the state dict, because the load hooks see only
the state dict. ``meta`` records the model config, the class names
(``dataset_meta``, as MMPretrain's ``get_model`` reads them), the training
class counts and the epoch / iteration of the full checkpoint it sits next
to (:func:`prompt_only_path`).

Any loader that goes through ``load_state_dict`` (MMEngine's
``load_checkpoint``, ``load_from``, MMPretrain's ``get_model``, Inferencer
and tools) loads it like a full checkpoint: the backbone's load hook calls
:func:`complete_prompt_only`, which takes the frozen weights from the
backbone's pretrained checkpoint and refuses one with another fingerprint.
"""
import os.path as osp
from typing import Optional

import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import (_load_checkpoint,
                                        _load_checkpoint_to_model)

from .errors import CheckpointMismatchError, wrong_file_kind
from .messages import message
from .saving import atomic_torch_save
from .state_dict import (PROMPT_KEY, backbone_fingerprint, decode_text,
                         encode_text, frozen_state_dict, is_trained_key)

__all__ = [
    'PROMPT_ONLY_FLAG', 'FINGERPRINT_KEY', 'SOURCE_KEY', 'prompt_only_path',
    'prompt_state_dict', 'save_prompt_checkpoint', 'is_prompt_checkpoint',
    'recorded_fingerprint', 'recorded_source', 'complete_prompt_only',
    'load_prompt_checkpoint', 'export_prompt_checkpoint'
]

PROMPT_ONLY_FLAG = 'lpt_prompt_only'
# Backbone state-dict entries of a prompt-only file (uint8 text tensors): the
# fingerprint and path of the frozen weights it was trained on.
FINGERPRINT_KEY = 'frozen_fingerprint'
SOURCE_KEY = 'frozen_source'
# Files written before the fingerprint was stored once also had these.
_OLD_META_KEYS = {
    FINGERPRINT_KEY: 'backbone_fingerprint',
    SOURCE_KEY: 'backbone_checkpoint'
}


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


def prompt_only_path(full: str, suffix: str = '_prompts') -> str:
    """The prompt-only file next to ``full``: ``<stem><suffix>.pth``."""
    return osp.splitext(full)[0] + suffix + '.pth'


def _backbone_source(model: nn.Module) -> str:
    source = getattr(model.backbone, 'pretrained_checkpoint', None)
    if source is None:
        raise ValueError(message('save_needs_pretrained'))
    return str(source)


def prompt_state_dict(model: nn.Module) -> dict:
    """The trained part of ``model.state_dict()``, plus the backbone's
    fingerprint and pretrained checkpoint path."""
    model = _unwrap(model)
    state = {
        k: v.detach().cpu()
        for k, v in model.state_dict().items() if is_trained_key(k)
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
    meta = dict(meta or {})
    meta[PROMPT_ONLY_FLAG] = True
    if meta.get('classes') is not None:
        meta.setdefault('dataset_meta', dict(classes=list(meta['classes'])))
    atomic_torch_save(
        dict(state_dict=prompt_state_dict(model), meta=meta), filename)


def is_prompt_checkpoint(checkpoint: dict) -> bool:
    """Whether a loaded checkpoint dict is a prompt-only one."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    return bool(isinstance(meta, dict) and meta.get(PROMPT_ONLY_FLAG))


def _recorded(checkpoint: dict, key: str) -> Optional[str]:
    value = (checkpoint.get('state_dict') or {}).get(f'backbone.{key}')
    if value is not None:
        return decode_text(value)
    return (checkpoint.get('meta') or {}).get(_OLD_META_KEYS[key])


def recorded_fingerprint(checkpoint: dict) -> Optional[str]:
    """The backbone fingerprint a loaded prompt-only checkpoint records.

    Args:
        checkpoint (dict): ``{'state_dict': ..., 'meta': ...}`` as loaded.

    Returns:
        str | None: 64 hex digits, or None when the file records none.
    """
    return _recorded(checkpoint, FINGERPRINT_KEY)


def recorded_source(checkpoint: dict) -> Optional[str]:
    """The pretrained backbone checkpoint a prompt-only file records."""
    return _recorded(checkpoint, SOURCE_KEY)


def complete_prompt_only(backbone: nn.Module, state_dict: dict,
                         prefix: str) -> None:
    """Complete a prompt-only state dict with the frozen backbone, in place.

    The body of the backbone's load-state-dict pre-hook. A prompt-only
    state dict holds no frozen weights but the fingerprint of those it was
    trained on (:data:`FINGERPRINT_KEY`). They are taken from ``backbone``
    when it already holds them, else from its pretrained checkpoint
    (``init_cfg``, or the path the file records), and must have that
    fingerprint. A full state dict passes unchanged. So every loader gives
    the full model's output or an error, never a random backbone.

    Args:
        backbone (nn.Module): An :class:`LPTVisionTransformer`.
        state_dict (dict): What is loaded into it; its keys start with
            ``prefix``.
        prefix (str): The backbone's prefix in ``state_dict``.
    """
    if backbone.prompt is not None and prefix + PROMPT_KEY not in state_dict:
        raise CheckpointMismatchError(
            message('no_shared_prompt', key=prefix + PROMPT_KEY))
    fingerprint = state_dict.pop(prefix + FINGERPRINT_KEY, None)
    recorded = state_dict.pop(prefix + SOURCE_KEY, None)
    frozen = list(frozen_state_dict(backbone))
    present = [k for k in frozen if prefix + k in state_dict]
    if fingerprint is None:
        if present and len(present) < len(frozen):
            missing = [k for k in frozen if prefix + k not in state_dict]
            raise CheckpointMismatchError(
                message(
                    'truncated',
                    present=len(present),
                    frozen=len(frozen),
                    key=prefix + missing[0]))
        if not present:
            raise CheckpointMismatchError(message('no_backbone'))
        return
    if present:
        raise CheckpointMismatchError(
            message('prompt_only_with_backbone', key=prefix + present[0]))
    expected = decode_text(fingerprint)
    recorded = decode_text(recorded) if recorded is not None else None
    if backbone_fingerprint(backbone) != expected:
        _load_fingerprinted(backbone, expected, recorded)
    for key, value in frozen_state_dict(backbone).items():
        state_dict[prefix + key] = value


def _load_fingerprinted(backbone: nn.Module, expected: str,
                        recorded: Optional[str]) -> None:
    source = backbone.pretrained_checkpoint or recorded
    if source is None:
        raise CheckpointMismatchError(
            message('no_pretrained', recorded=recorded))
    if '://' not in source and not osp.isfile(source):
        raise FileNotFoundError(
            message(
                'pretrained_missing',
                recorded=recorded,
                source=source,
                fingerprint=expected[:16]))
    backbone.load_pretrained(source)
    actual = backbone_fingerprint(backbone)
    if actual != expected:
        raise CheckpointMismatchError(
            message(
                'other_backbone',
                recorded=recorded,
                expected=expected,
                source=source,
                actual=actual))


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
        raise wrong_file_kind(
            filename, 'is not a prompt-only checkpoint (its meta has no '
            f'`{PROMPT_ONLY_FLAG}`);', 'load it as a full checkpoint '
            'instead.')
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
        raise wrong_file_kind(checkpoint, 'is already a prompt-only file.')
    _load_checkpoint_to_model(model, full)
    trained_on = backbone_fingerprint(model.backbone)
    source = _backbone_source(model)
    model.backbone.load_pretrained(source)
    actual = backbone_fingerprint(model.backbone)
    if actual != trained_on:
        raise ValueError(
            message(
                'export_other_backbone',
                checkpoint=checkpoint,
                trained_on=trained_on,
                source=source,
                actual=actual))
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
