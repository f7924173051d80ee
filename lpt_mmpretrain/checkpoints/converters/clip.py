"""CLIP's ViT image tower -> MMPretrain's layout (dict-to-dict converters).

OpenAI CLIP and open_clip name a ViT image tower's tensors alike (``visual.``
inside a whole CLIP model). :func:`convert_clip_visual` maps them to
MMPretrain's ``VisionTransformer`` names; the matching backbone config is
``pre_norm=True`` (CLIP's ``ln_pre``), ``norm_cfg=dict(type='LN', eps=1e-5)``
and, for OpenAI weights, ``layer_cfgs=dict(act_cfg=dict(
type='mmpretrain.QuickGELU'))`` (see ``configs/_base_/models/
lpt_clip_vit_b16.py`` and ``docs/clip.md``). The activation is not stored in
a checkpoint: the config has to name it.

The files are read by :func:`load_clip_state_dict`; LIFT's text
initialisation of the classifier is ``tools/misc/clip_text_embeddings.py``.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.logging import print_log

from ..messages import message
from .timm import is_timm_vit_state_dict, rename_vit_key

__all__ = [
    'split_clip_visual', 'convert_clip_visual', 'convert_clip_checkpoint',
    'CLIP_PROJ_KEY'
]

# Where ``convert_clip_checkpoint(keep_proj=True)`` stores the projection:
# the weight of ``CLIPProjectionNeck.projection`` in an ImageClassifier.
CLIP_PROJ_KEY = 'neck.projection.weight'

# ``transformer.resblocks.i.<suffix>`` -> ``layers.i.<suffix>``.
_BLOCK_MAP = OrderedDict([
    ('ln_1.', 'ln1.'),
    ('attn.in_proj_weight', 'attn.qkv.weight'),  # (3C, C), rows q, k, v
    ('attn.in_proj_bias', 'attn.qkv.bias'),
    ('attn.out_proj.', 'attn.proj.'),
    ('ls_1.gamma', 'attn.gamma1.weight'),  # layer scale (ls_init_value)
    ('ln_2.', 'ln2.'),
    ('mlp.c_fc.', 'ffn.layers.0.0.'),
    ('mlp.c_proj.', 'ffn.layers.1.'),
    ('ls_2.gamma', 'ffn.gamma2.weight'),
])
_TOP_MAP = OrderedDict([
    ('conv1.weight', 'patch_embed.projection.weight'),  # no bias in CLIP
    ('ln_pre.', 'pre_norm.'),
    ('ln_post.', 'ln1.'),  # the final norm, read on the CLS token
])
_BLOCK_KEY = re.compile(r'^transformer\.resblocks\.(\d+)\.(.+)$')
_REQUIRED = ('class_embedding', 'positional_embedding', 'conv1.weight',
             'ln_pre.weight', 'ln_post.weight')


def split_clip_visual(
    state_dict: Dict[str, torch.Tensor]
) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Take the image tower out of a whole CLIP state dict.

    Args:
        state_dict (dict): A whole CLIP model (``visual.*`` keys next to the
            text tower) or an image tower alone.

    Returns:
        tuple[dict, list[str]]: The image tower without the ``visual.``
        prefix, and the keys left out (the text tower, ``logit_scale``).
    """
    if any(k.startswith('visual.') for k in state_dict):
        visual = {
            k[len('visual.'):]: v
            for k, v in state_dict.items() if k.startswith('visual.')
        }
        return visual, [k for k in state_dict if not k.startswith('visual.')]
    return dict(state_dict), []


def convert_clip_visual(visual: Dict[str, torch.Tensor]
                        ) -> Tuple[OrderedDict, Optional[torch.Tensor]]:
    """Map a CLIP ViT image tower to MMPretrain ``VisionTransformer`` keys.

    ``class_embedding`` (C,) -> ``cls_token`` (1, 1, C);
    ``positional_embedding`` (N, C) -> ``pos_embed`` (1, N, C); ``conv1`` ->
    ``patch_embed.projection``; ``ln_pre`` -> ``pre_norm``;
    ``transformer.resblocks.i.{ln_1, attn.in_proj_*, attn.out_proj, ln_2,
    mlp.c_fc, mlp.c_proj, ls_1, ls_2}`` -> ``layers.i.{ln1, attn.qkv,
    attn.proj, ln2, ffn.layers.0.0, ffn.layers.1, attn.gamma1,
    ffn.gamma2}``; ``ln_post`` -> ``ln1`` (the final norm).

    Args:
        visual (dict): An image tower state dict (no ``visual.`` prefix).

    Returns:
        tuple[OrderedDict, Tensor | None]: The backbone tensors (no
        ``backbone.`` prefix) and the projection ``proj`` of shape
        (C, D), or None when the tower has none.

    Raises:
        ValueError: Naming the first key that is not part of a CLIP ViT image
            tower (e.g. a ResNet CLIP, attentional pooling, q/k norms, a text
            tower), or the first missing one.
    """
    converted = OrderedDict()
    proj = None
    for key, value in visual.items():
        if key == 'proj':
            proj = value
            continue
        if key in ('class_embedding', 'positional_embedding'):
            continue  # reshaped below
        new_key = _convert_key(key)
        if new_key is None:
            raise ValueError(
                message(
                    'clip_unknown_key',
                    key=key,
                    shape=tuple(value.shape),
                    hint=_layout_hint(visual)))
        converted[new_key] = value
    for key in _REQUIRED:
        if key not in visual:
            raise ValueError(
                message(
                    'clip_missing_key',
                    key=key,
                    found=list(visual)[:5],
                    hint=_layout_hint(visual)))
    converted['cls_token'] = visual['class_embedding'].reshape(1, 1, -1)
    converted['pos_embed'] = visual['positional_embedding'].unsqueeze(0)
    if proj is not None and (proj.dim() != 2 or proj.shape[0]
                             != converted['cls_token'].shape[-1]):
        raise ValueError(
            f"Key 'proj' has shape {tuple(proj.shape)}; a CLIP ViT projection"
            f" is (width, embed_dim) with width "
            f"{converted['cls_token'].shape[-1]}.")
    return converted, proj


def _convert_key(key: str) -> Optional[str]:
    return rename_vit_key(key, _BLOCK_KEY, _BLOCK_MAP, _TOP_MAP)


def _layout_hint(visual: Dict[str, torch.Tensor]) -> str:
    """What the state dict is, when it is not a CLIP ViT image tower."""
    keys = list(visual)
    if any(k.startswith('vision_model.') for k in keys):
        return message('clip_from_hf')
    if is_timm_vit_state_dict(visual):
        return message('clip_from_timm')
    if any(k.startswith(('layer1.', 'attnpool.', 'bn1.')) for k in keys):
        return message('clip_resnet')
    if any(k.startswith(('token_embedding.', 'ln_final.')) for k in keys):
        return message('clip_text_only')
    return message('clip_other')


def convert_clip_checkpoint(state_dict: Dict[str, torch.Tensor],
                            keep_proj: bool = False,
                            source: str = '') -> dict:
    """Turn a CLIP state dict into an MMPretrain classifier-layout checkpoint.

    Args:
        state_dict (dict): A whole CLIP model or its image tower.
        keep_proj (bool): Also store the projection (C, D), transposed to a
            ``nn.Linear`` weight (D, C), under :data:`CLIP_PROJ_KEY` for
            :class:`CLIPProjectionNeck`. Defaults to False (dropped).
        source (str): Recorded in ``meta['source']``. Defaults to ''.

    Returns:
        dict: ``{'state_dict': {'backbone.<VisionTransformer key>': ...,
        [CLIP_PROJ_KEY: ...]}, 'meta': {...}}``; ``meta`` has ``embed_dims``,
        ``num_layers``, ``patch_size``, ``img_size`` and ``proj_dims``.
    """
    visual, left_out = split_clip_visual(state_dict)
    backbone, proj = convert_clip_visual(visual)
    if left_out:
        print_log(
            f'CLIP -> MMPretrain: left out {len(left_out)} key(s) outside '
            f'the image tower (text tower, logit scale), e.g. '
            f'{left_out[:3]}.',
            logger='current')
    out = OrderedDict(('backbone.' + k, v) for k, v in backbone.items())
    if keep_proj:
        if proj is None:
            raise ValueError('keep_proj=True but the image tower has no '
                             "'proj': convert without keeping it.")
        out[CLIP_PROJ_KEY] = proj.t().contiguous()
    elif proj is not None:
        print_log(
            "CLIP -> MMPretrain: dropped the projection 'proj' "
            f'{tuple(proj.shape)} (keep it with keep_proj=True).',
            logger='current')
    patch = backbone['patch_embed.projection.weight']
    num_patches = backbone['pos_embed'].shape[1] - 1
    meta = dict(
        converted_from='clip',
        source=source,
        embed_dims=int(patch.shape[0]),
        num_layers=len(
            {k.split('.')[1]
             for k in backbone if k.startswith('layers.')}),
        patch_size=int(patch.shape[-1]),
        img_size=int(round(num_patches**0.5)) * int(patch.shape[-1]),
        proj_dims=int(proj.shape[1]) if keep_proj else None)
    return dict(state_dict=out, meta=meta)
