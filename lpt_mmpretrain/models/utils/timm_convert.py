"""Read ViT checkpoints and map timm's ViT layout to MMPretrain's.

LPT starts from timm's ``vit_base_patch16_224_in21k`` weights; MMPretrain's
``VisionTransformer`` names the same tensors differently. These helpers are
shared by :class:`LPTVisionTransformer` (which accepts a timm file directly)
and ``tools/model_converters/timm_to_mmpretrain.py``.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.logging import print_log

__all__ = [
    'is_timm_vit_state_dict', 'convert_timm_vit', 'load_state_dict_file',
    'backbone_state_dict', 'rename_vit_key'
]

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


def backbone_state_dict(state_dict: Dict[str, torch.Tensor],
                        prefix: Optional[str] = None,
                        source: str = 'the checkpoint'
                        ) -> Dict[str, torch.Tensor]:
    """The ViT backbone tensors of a checkpoint, in MMPretrain's layout.

    The checkpoint filter of :class:`LPTVisionTransformer`: keeps the keys
    under ``prefix`` (``'backbone.'`` when the file is a classifier's), then
    converts timm's layout (:func:`convert_timm_vit`).

    Args:
        state_dict (dict): A flat state dict.
        prefix (str, optional): Keep only these keys, without the prefix.
            Defaults to None (``'backbone.'`` if any key starts with it).
        source (str): Names the file in messages.

    Returns:
        dict: ``name -> tensor`` in MMPretrain ``VisionTransformer`` names.
    """
    if prefix is None and any(k.startswith('backbone.') for k in state_dict):
        prefix = 'backbone.'  # an MMPretrain classifier checkpoint
    if prefix is not None:
        outside = [k for k in state_dict if not k.startswith(prefix)]
        state_dict = {
            k[len(prefix):]: v
            for k, v in state_dict.items() if k.startswith(prefix)
        }
        if not state_dict:
            raise ValueError(f'No key of {source} starts with prefix '
                             f'{prefix!r}: fix init_cfg.prefix.')
        if outside:
            print_log(
                f'Ignored {len(outside)} key(s) outside {prefix!r} in '
                f'{source}, e.g. {outside[:5]}.',
                logger='current')
    if is_timm_vit_state_dict(state_dict):
        print_log(
            'Detected a timm ViT checkpoint; converting it.', logger='current')
        state_dict = convert_timm_vit(state_dict)
    return state_dict


def load_state_dict_file(
    filename: str,
    map_location: Optional[str] = 'cpu'
) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Read a checkpoint and return its flat state dict.

    ``.safetensors`` files are read with the ``safetensors`` package (through
    MMEngine's file backends, so remote paths work too); everything else goes
    through MMEngine's ``CheckpointLoader``, so every scheme it supports
    (local path, ``http(s)://``, ``open-mmlab://``, ...) works. A state dict
    nested under ``'state_dict'`` or ``'model'`` is unwrapped.

    Args:
        filename (str): Checkpoint path or URL.
        map_location (str, optional): Passed to ``torch.load``.
            Defaults to 'cpu'.

    Returns:
        tuple[dict, dict]: The state dict and the checkpoint's ``'meta'``
        (empty when there is none).
    """
    if str(filename).endswith('.npz'):
        raise ValueError(
            f'{filename}: JAX .npz checkpoints are not supported. Load it '
            'with timm (timm.create_model(name, pretrained=True, '
            "pretrained_cfg_overlay=dict(file=...))) and save its "
            'state_dict(), or use the .safetensors / .bin file of the model.')
    if str(filename).endswith('.safetensors'):
        from mmengine.fileio import get
        from safetensors.torch import load as load_safetensors
        checkpoint = load_safetensors(get(filename))
        if map_location not in (None, 'cpu'):
            checkpoint = {k: v.to(map_location) for k, v in checkpoint.items()}
    else:
        from mmengine.runner.checkpoint import _load_checkpoint
        checkpoint = _load_checkpoint(
            filename, map_location=map_location, logger='current')
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{filename} holds a {type(checkpoint).__name__}, '
                         'not a state dict or a checkpoint dict.')
    meta = checkpoint.get('meta', {})
    meta = meta if isinstance(meta, dict) else {}
    for wrapper in ('state_dict', 'model'):
        if isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
            break
    tensors = {k: v for k, v in checkpoint.items() if torch.is_tensor(v)}
    if not tensors:
        raise ValueError(
            f'{filename} holds no tensors at the top level nor under '
            f"'state_dict' / 'model' (found keys {list(checkpoint)[:10]}).")
    return tensors, meta
