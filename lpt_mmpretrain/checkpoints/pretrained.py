"""Reading a pretrained ViT into an :class:`LPTVisionTransformer`, checked.

:func:`split_init_cfg` picks the ``Pretrained`` entries of ``init_cfg``
that the backbone loads itself; :func:`pretrained_state_dict` is the body
of its ``load_pretrained``: read the file, filter it to backbone keys
(MMPretrain ViT, classifier or LPT checkpoints, timm ViT checkpoints), and
check that every backbone tensor but the prompt is there with a compatible
shape.
"""
import math
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model.weight_init import PretrainedInit

from .converters import backbone_state_dict
from .files import load_state_dict_file
from .messages import message
from .state_dict import PROMPT_KEY, check_state_dict

__all__ = ['split_init_cfg', 'pretrained_state_dict', 'pos_embed_problem']

_PRETRAINED_ARGS = {'type', 'checkpoint', 'prefix', 'map_location'}


def split_init_cfg(init_cfg: Union[dict, List[dict],
                                   None]) -> Tuple[List[dict], List[dict]]:
    """``(Pretrained entries, the others)`` of a backbone's ``init_cfg``.

    The backbone loads the ``Pretrained`` entries itself, checked; each
    must name a checkpoint and take no other arguments than ``prefix`` and
    ``map_location``.
    """
    cfgs = list([init_cfg] if isinstance(init_cfg, dict) else init_cfg or [])
    pretrained = [
        cfg for cfg in cfgs
        if cfg.get('type') in ('Pretrained', PretrainedInit)
    ]
    for cfg in pretrained:
        if 'checkpoint' not in cfg or set(cfg) - _PRETRAINED_ARGS:
            raise ValueError(
                "init_cfg of type 'Pretrained' takes checkpoint=..., and "
                f'optionally prefix / map_location; got {cfg}.')
    return pretrained, [cfg for cfg in cfgs if cfg not in pretrained]


def pretrained_state_dict(backbone: nn.Module,
                          checkpoint: str,
                          prefix: Optional[str] = None,
                          map_location: str = 'cpu'
                          ) -> Dict[str, torch.Tensor]:
    """The checked tensors of ``checkpoint`` that ``backbone`` loads.

    Every backbone tensor except the prompt must be present with a
    compatible shape (``pos_embed`` may have another grid: the backbone
    resizes it); a prompt in the checkpoint is loaded and must match
    (L, P, C); extra tensors inside the backbone's own modules fail (they
    would be dropped silently and change the output: layer scale, ...).

    Args:
        backbone (nn.Module): An :class:`LPTVisionTransformer`.
        checkpoint (str): Path or URL.
        prefix (str, optional): Keep the keys under this prefix.
            Defaults to None (``'backbone.'`` for classifiers).
        map_location (str): As in ``torch.load``. Defaults to 'cpu'.

    Returns:
        dict: The backbone keys to load.
    """
    state_dict, _ = load_state_dict_file(checkpoint, map_location)
    state_dict = backbone_state_dict(state_dict, prefix, checkpoint)
    own = backbone.state_dict()
    namespaces = {name for name, _ in backbone.named_children()}
    namespaces |= set(backbone._parameters)
    extra = [k for k in state_dict if k not in own]
    check_state_dict(
        own,
        state_dict,
        f'Checkpoint {checkpoint}',
        keys=[k for k in own if k != PROMPT_KEY or k in state_dict],
        hint=lambda key: backbone_hint(backbone, key, state_dict),
        shape_ok=lambda key, got, want: key == 'pos_embed' and
        not pos_embed_problem(backbone, got),
        unexpected=[k for k in extra if k.split('.')[0] in namespaces])
    if extra:
        print_log(
            f'Ignored {len(extra)} checkpoint key(s) that are not '
            f'backbone parameters: {extra[:10]}.',
            logger='current')
    return {k: state_dict[k] for k in own if k in state_dict}


def pos_embed_problem(backbone: nn.Module, shape: Tuple[int, ...]) -> str:
    """Why a checkpoint's ``pos_embed`` of ``shape`` cannot be resized to
    the backbone's ('' if it can)."""
    if len(shape) != 3 or shape[0] != 1:
        return 'not of shape (1, L, C)'
    if shape[2] != backbone.embed_dims:
        return f'width {shape[2]} != embed_dims {backbone.embed_dims}'
    num_patches = shape[1] - backbone.num_extra_tokens
    side = math.isqrt(max(num_patches, 0))
    if num_patches <= 0 or side * side != num_patches:
        return (f'{shape[1]} tokens are not 1 CLS token plus a square grid '
                'of patches')
    return ''


def backbone_hint(backbone: nn.Module, key: str,
                  state_dict: Dict[str, torch.Tensor]) -> str:
    """The likely fix when ``key`` is missing, extra or mis-shaped."""
    if not any(k.startswith('layers.') for k in state_dict):
        return message('not_vit')
    parts = key.split('.')
    shape = tuple(state_dict[key].shape) if key in state_dict else None
    if key == PROMPT_KEY:
        return message('prompt_length', prompt_length=backbone.prompt_length)
    if key == 'pos_embed' and shape is not None:
        return message('pos_embed', problem=pos_embed_problem(backbone, shape))
    if key == 'patch_embed.projection.weight' and shape is not None \
            and len(shape) == 4:
        return message(
            'patch_embed', patch_size=shape[2], in_channels=shape[1])
    if key not in backbone.state_dict():
        return message('arch_options')
    if parts[0] == 'layers' and shape is None:
        ckpt_layers = _num_layers(state_dict)
        if int(parts[1]) >= ckpt_layers:
            return message(
                'num_layers',
                checkpoint=ckpt_layers,
                model=backbone.num_layers)
        if key.endswith('attn.qkv.bias'):
            return message('qkv_bias')
        if 'gamma' in key:
            return message('layer_scale')
    if parts[0] == 'pre_norm' and shape is None:
        return message('pre_norm')
    if parts[0] == 'ln1' and shape is None:
        return message('final_norm')
    return message('vit_arch')


def _num_layers(state_dict: Dict[str, torch.Tensor]) -> int:
    indices: List[int] = [
        int(k.split('.')[1]) for k in state_dict
        if k.startswith('layers.') and k.split('.')[1].isdigit()
    ]
    return max(indices) + 1 if indices else 0
