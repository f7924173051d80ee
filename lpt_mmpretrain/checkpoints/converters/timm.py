"""timm's ViT layout -> MMPretrain's (a dict-to-dict converter).

LPT starts from timm's ``vit_base_patch16_224_in21k`` weights; MMPretrain's
``VisionTransformer`` names the same tensors differently. Used by the
backbone's checkpoint filter (:func:`backbone_state_dict`, so a timm file
loads directly) and ``tools/model_converters/timm_to_mmpretrain.py``.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional

import torch
from mmengine.logging import print_log

__all__ = ['is_timm_vit_state_dict', 'convert_timm_vit', 'rename_vit_key']

# timm ``blocks.i.<suffix>`` -> MMPretrain ``layers.i.<suffix>``.
_BLOCK_MAP = OrderedDict([
    ('norm1.', 'ln1.'),
    ('attn.qkv.', 'attn.qkv.'),
    ('attn.proj.', 'attn.proj.'),
    ('ls1.gamma', 'attn.gamma1.weight'),  # layer scale (LayerScale.weight)
    ('norm2.', 'ln2.'),
    ('mlp.fc1.', 'ffn.layers.0.0.'),
    ('mlp.fc2.', 'ffn.layers.1.'),
    ('ls2.gamma', 'ffn.gamma2.weight'),
])

# timm top-level prefixes -> MMPretrain names.
_TOP_MAP = OrderedDict([
    ('patch_embed.proj.', 'patch_embed.projection.'),
    ('norm_pre.', 'pre_norm.'),  # timm ``pre_norm=True`` (CLIP style)
    ('norm.', 'ln1.'),  # final norm applied to every token
    # timm applies ``fc_norm`` to the averaged patch tokens
    # (``global_pool='avg'``); MMPretrain's ``out_type='avg_featmap'`` does
    # the same with ``ln2``.
    ('fc_norm.', 'ln2.'),
])

# Classification-head tensors: not part of the backbone, dropped.
_HEAD_PREFIXES = ('head.', 'pre_logits.')

_BLOCK_KEY = re.compile(r'^blocks\.(\d+)\.(.+)$')


def is_timm_vit_state_dict(state_dict: Dict[str, torch.Tensor]) -> bool:
    """Whether a state dict uses timm's ViT layout.

    Args:
        state_dict (dict): A flat ``name -> tensor`` mapping.

    Returns:
        bool: True when it holds timm's ``patch_embed.proj.weight`` or a
        ``blocks.<i>.attn.qkv.weight`` entry.
    """
    return any(k == 'patch_embed.proj.weight'
               or re.match(r'^blocks\.\d+\.attn\.qkv\.weight$', k)
               for k in state_dict)


def convert_timm_vit(state_dict: Dict[str, torch.Tensor]) -> OrderedDict:
    """Map timm ``VisionTransformer`` keys to MMPretrain's.

    ``cls_token`` and ``pos_embed`` keep their names; ``patch_embed.proj`` ->
    ``patch_embed.projection``; ``blocks.i.{norm1, attn.qkv, attn.proj,
    norm2, mlp.fc1, mlp.fc2}`` -> ``layers.i.{ln1, attn.qkv, attn.proj, ln2,
    ffn.layers.0.0, ffn.layers.1}``; layer scale ``blocks.i.ls1.gamma`` /
    ``ls2.gamma`` -> ``layers.i.attn.gamma1.weight`` /
    ``layers.i.ffn.gamma2.weight``; ``norm_pre`` -> ``pre_norm``; ``norm`` ->
    ``ln1``; ``fc_norm`` (average-pooling models) -> ``ln2``. The
    classification head (``head.*``, ``pre_logits.*``) is dropped with a log
    line: LPT's feature is the final-norm CLS token, taken before them.

    Args:
        state_dict (dict): A timm ViT state dict.

    Returns:
        OrderedDict: The same tensors under MMPretrain ``VisionTransformer``
        names (no ``backbone.`` prefix).

    Raises:
        ValueError: If a key has no MMPretrain counterpart (e.g. register
            tokens, q/k norms, SwiGLU MLPs, hybrid CNN stems), since silently
            dropping it would change the network's output.
    """
    converted = OrderedDict()
    dropped: List[str] = []
    unknown: List[str] = []
    for key, value in state_dict.items():
        new_key = _convert_key(key)
        if new_key is None:
            if key.startswith(_HEAD_PREFIXES):
                dropped.append(key)
            else:
                unknown.append(key)
            continue
        converted[new_key] = value
    if unknown:
        raise ValueError(
            f'Cannot convert {len(unknown)} timm key(s) to MMPretrain\'s '
            f'VisionTransformer, first: {unknown[:5]}. Only the plain ViT '
            'layout (patch_embed, cls_token, pos_embed, blocks with '
            'norm1/attn.qkv/attn.proj/norm2/mlp.fc1/mlp.fc2 and optional '
            'layer scale, norm_pre, norm, fc_norm, head) is supported; this '
            'checkpoint is a ViT variant MMPretrain cannot represent.')
    if not converted:
        raise ValueError('The state dict holds no timm ViT backbone weights.')
    if dropped:
        print_log(
            f'timm -> MMPretrain: dropped {len(dropped)} classification-head '
            f'key(s) {dropped}.',
            logger='current')
    return converted


def rename_vit_key(key: str, block_key: 're.Pattern', block_map: dict,
                   top_map: dict) -> Optional[str]:
    """Map a foreign ViT key to MMPretrain's by prefix tables.

    ``block_key`` matches a block key into (index, rest); ``rest`` is
    renamed by the first matching prefix of ``block_map`` into
    ``layers.<index>.<new>``; other keys by ``top_map``. None: no match.
    (Shared by the timm and the CLIP converters.)
    """
    match = block_key.match(key)
    if match is not None:
        index, rest = match.groups()
        for src, dst in block_map.items():
            if rest.startswith(src):
                return f'layers.{index}.{dst}{rest[len(src):]}'
        return None
    for src, dst in top_map.items():
        if key.startswith(src):
            return dst + key[len(src):]
    return None


def _convert_key(key: str) -> Optional[str]:
    if key in ('cls_token', 'pos_embed'):
        return key
    return rename_vit_key(key, _BLOCK_KEY, _BLOCK_MAP, _TOP_MAP)
