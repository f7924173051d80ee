"""Checks of what an :class:`LPTClassifier` loads: the trained tensors.

:func:`check_trained_state` is the body of the classifier's
load-state-dict pre-hook, :func:`phase1_state` of ``load_phase1``. The
frozen backbone tensors are the backbone's own business (it completes them
for a prompt-only file, :func:`complete_prompt_only`); everything else,
trained or unknown, is checked here, so a phase-1 file in a phase-2 model,
a head of another class count or a phase-2 file in a phase-1 model fail on
every loading path instead of leaving random tensors.
"""
from typing import Dict, Mapping

import torch
import torch.nn as nn
from mmengine.runner.checkpoint import _load_checkpoint

from .messages import message
from .prompt_only import FINGERPRINT_KEY, SOURCE_KEY
from .state_dict import PROMPT_KEY, check_state_dict, is_trained_key

__all__ = ['check_trained_state', 'phase1_state']

_SHARED_PROMPT = f'backbone.{PROMPT_KEY}'


def check_trained_state(model: nn.Module, state_dict: Mapping,
                        prefix: str) -> None:
    """Raise unless every trained tensor of ``model`` fits ``state_dict``.

    Args:
        model (nn.Module): An :class:`LPTClassifier`.
        state_dict (Mapping): What is loaded; the model's keys start with
            ``prefix``.
        prefix (str): The model's prefix in ``state_dict``.
    """
    loaded = {
        k[len(prefix):]: v
        for k, v in state_dict.items() if k.startswith(prefix)
    }
    own = model.state_dict()
    ignore = {f'backbone.{FINGERPRINT_KEY}', f'backbone.{SOURCE_KEY}'}
    check_state_dict(
        own,
        loaded,
        'The checkpoint',
        keys=[k for k in own if is_trained_key(k)],
        hint=lambda key: classifier_hint(own, key, loaded, 'load'),
        unexpected=[k for k in loaded if k not in own and k not in ignore])


def phase1_state(model: nn.Module, filename: str) -> Dict[str, torch.Tensor]:
    """The shared prompt and head of a phase-1 checkpoint, checked.

    Args:
        model (nn.Module): A phase-2 :class:`LPTClassifier`.
        filename (str): A phase-1 checkpoint, full or prompt-only (a work
            dir goes through :func:`resolve_checkpoint_path` first).

    Returns:
        dict: ``backbone.prompt`` and ``head.*`` to copy into the model.
    """
    ckpt = _load_checkpoint(filename, map_location='cpu')
    state = ckpt.get('state_dict', ckpt)
    own = model.state_dict()
    # Both the shared prompt and the head must come from phase 1.
    wanted = [k for k in own if k == _SHARED_PROMPT or k.startswith('head.')]
    check_state_dict(
        own,
        state,
        f'The phase-1 checkpoint {filename}',
        keys=wanted,
        hint=lambda key: classifier_hint(own, key, state, 'phase1'))
    return {k: state[k] for k in wanted}


def classifier_hint(own: Mapping, key: str, state: Mapping,
                    purpose: str) -> str:
    """The likely fix when a checkpoint's ``key`` does not fit the model
    whose state dict is ``own`` (``purpose``: 'load' or 'phase1')."""
    if key.startswith('neck.') and key not in own:
        return message('phase2_file')
    if key.startswith('neck.') and key not in state:
        return message('phase1_file')
    if key.startswith('neck.'):
        return message('neck')
    if key == _SHARED_PROMPT:
        return message('not_lpt' if key not in state else 'prompt_shape')
    if key.startswith('head.') and key in state and key in own:
        got, want = tuple(state[key].shape), tuple(own[key].shape)
        if got[1:] == want[1:]:
            return message('num_classes', checkpoint=got[0], model=want[0])
        return message('head')
    if key.startswith('head.') and purpose == 'phase1':
        return message('not_phase1')
    return message('config')
