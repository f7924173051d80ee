"""Read CLIP checkpoints: the ViT image tower in MMPretrain's layout, and
class-name text embeddings.

OpenAI CLIP and open_clip name a ViT image tower's tensors alike (``visual.``
inside a whole CLIP model). :func:`convert_clip_visual` maps them to
MMPretrain's ``VisionTransformer`` names; the matching backbone config is
``pre_norm=True`` (CLIP's ``ln_pre``), ``norm_cfg=dict(type='LN', eps=1e-5)``
and, for OpenAI weights, ``layer_cfgs=dict(act_cfg=dict(
type='mmpretrain.QuickGELU'))`` (see ``configs/_base_/models/
lpt_clip_vit_b16.py`` and ``docs/clip.md``). The activation is not stored in
a checkpoint: the config has to name it.

:func:`clip_text_embeddings` computes LIFT's text initialisation of a cosine
classifier from an open_clip model; it needs ``open_clip_torch``.
"""
import re
import zipfile
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log

from .timm_convert import load_state_dict_file, rename_vit_key

__all__ = [
    'load_clip_state_dict', 'split_clip_visual', 'convert_clip_visual',
    'convert_clip_checkpoint', 'build_open_clip_text_model',
    'clip_text_embeddings', 'CLIP_PROJ_KEY', 'CLIP_TEXT_TEMPLATE'
]

# Where ``convert_clip_checkpoint(keep_proj=True)`` stores the projection:
# the weight of ``CLIPProjectionNeck.projection`` in an ImageClassifier.
CLIP_PROJ_KEY = 'neck.projection.weight'
# LIFT's prompt for the text initialisation of the classifier.
CLIP_TEXT_TEMPLATE = 'a photo of a {}.'

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
# Non-tensor entries of OpenAI's TorchScript files, read as tensors.
_OPENAI_EXTRAS = ('input_resolution', 'context_length', 'vocab_size')


def load_clip_state_dict(filename: str) -> Dict[str, torch.Tensor]:
    """Read a CLIP checkpoint into a flat state dict.

    OpenAI's ``ViT-B-16.pt`` is a TorchScript archive, read with
    ``torch.jit.load`` (as OpenAI's and open_clip's loaders do); open_clip's
    ``.bin`` / ``.pt`` / ``.safetensors`` files and training checkpoints
    (under ``'state_dict'``, DDP ``module.`` prefix) are read as state dicts.

    Args:
        filename (str): Checkpoint path.

    Returns:
        dict: ``name -> tensor``, without a ``module.`` prefix.
    """
    if _is_torchscript(filename):
        state_dict = dict(
            torch.jit.load(filename, map_location='cpu').state_dict())
    else:
        state_dict, _ = load_state_dict_file(filename, map_location='cpu')
    if state_dict and all(k.startswith('module.') for k in state_dict):
        state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}
    for key in _OPENAI_EXTRAS:
        state_dict.pop(key, None)
    return state_dict


def _is_torchscript(filename: str) -> bool:
    if not zipfile.is_zipfile(filename):
        return False
    with zipfile.ZipFile(filename) as archive:
        return any(
            name.split('/', 1)[-1] == 'constants.pkl'
            for name in archive.namelist())


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


def convert_clip_visual(
    visual: Dict[str, torch.Tensor]
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
                f"Key '{key}' (shape {tuple(value.shape)}) does not fit a "
                'CLIP ViT image tower. Expected class_embedding, '
                'positional_embedding, conv1, ln_pre, transformer.resblocks.'
                '<i>.{ln_1, attn.in_proj_*, attn.out_proj, ln_2, mlp.c_fc, '
                'mlp.c_proj}, ln_post and proj, optionally under visual. '
                f'{_layout_hint(visual)}')
        converted[new_key] = value
    for key in _REQUIRED:
        if key not in visual:
            raise ValueError(
                f"Key '{key}' of a CLIP ViT image tower is missing (first "
                f'keys found: {list(visual)[:5]}). {_layout_hint(visual)}')
    converted['cls_token'] = visual['class_embedding'].reshape(1, 1, -1)
    converted['pos_embed'] = visual['positional_embedding'].unsqueeze(0)
    if proj is not None and (proj.dim() != 2 or proj.shape[0] !=
                             converted['cls_token'].shape[-1]):
        raise ValueError(
            f"Key 'proj' has shape {tuple(proj.shape)}; a CLIP ViT projection"
            f" is (width, embed_dim) with width "
            f"{converted['cls_token'].shape[-1]}.")
    return converted, proj


def _convert_key(key: str) -> Optional[str]:
    return rename_vit_key(key, _BLOCK_KEY, _BLOCK_MAP, _TOP_MAP)


def _layout_hint(visual: Dict[str, torch.Tensor]) -> str:
    keys = list(visual)
    if any(k.startswith('vision_model.') for k in keys):
        return ('This is a Hugging Face transformers CLIP model: use the '
                "open_clip file of the same model ('open_clip_pytorch_model."
                "bin' / 'open_clip_model.safetensors').")
    if any(re.match(r'^blocks\.\d+\.attn\.qkv\.weight$', k) for k in keys):
        return ('This is a timm ViT: convert it with '
                'tools/model_converters/timm_to_mmpretrain.py.')
    if any(k.startswith(('layer1.', 'attnpool.', 'bn1.')) for k in keys):
        return 'This is a ResNet CLIP; only ViT image towers convert.'
    if any(k.startswith(('token_embedding.', 'ln_final.')) for k in keys):
        return ('This is a text tower without an image tower: pass the whole '
                'CLIP checkpoint.')
    return 'It is not a CLIP ViT image tower.'


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
        num_layers=len({k.split('.')[1]
                        for k in backbone if k.startswith('layers.')}),
        patch_size=int(patch.shape[-1]),
        img_size=int(round(num_patches**0.5)) * int(patch.shape[-1]),
        proj_dims=int(proj.shape[1]) if keep_proj else None)
    return dict(state_dict=out, meta=meta)


def build_open_clip_text_model(model_name: str,
                               state_dict: Dict[str, torch.Tensor],
                               quick_gelu: bool = False,
                               with_proj: bool = True):
    """Build an open_clip model and load its text tower from a checkpoint.

    Nothing is downloaded: the model is built with ``pretrained=None`` and
    filled from ``state_dict``. Every text-tower tensor (and, with
    ``with_proj``, the image projection ``visual.proj``) must be there with
    the model's shape; the rest of the image tower is not needed.

    Args:
        model_name (str): An open_clip model name (``'ViT-B-16'``) or the
            path of an open_clip model config ``.json``.
        state_dict (dict): A whole CLIP state dict (OpenAI or open_clip
            names).
        quick_gelu (bool): Build with QuickGELU, as OpenAI's weights need
            (open_clip's ``force_quick_gelu``). Defaults to False.
        with_proj (bool): Also load ``visual.proj``. Defaults to True.

    Returns:
        tuple: ``(model, tokenizer)``.
    """
    try:
        import open_clip
    except ImportError as e:
        raise ImportError('CLIP text embeddings need open_clip: pip install '
                          'open_clip_torch') from e
    if model_name.endswith('.json'):
        from pathlib import Path
        open_clip.add_model_config(model_name)
        model_name = Path(model_name).stem
    if model_name not in open_clip.list_models():
        raise ValueError(f'Unknown open_clip model {model_name!r}: give a '
                         'name from open_clip.list_models() or the path of '
                         'a model config .json.')
    model = open_clip.create_model(
        model_name, pretrained=None, force_quick_gelu=quick_gelu)
    own = model.state_dict()
    wanted = [
        k for k in own if not k.startswith('visual.')
        and k not in ('logit_scale', 'logit_bias')
    ]
    if with_proj:
        wanted.append('visual.proj')
    for key in wanted:
        if key not in state_dict:
            raise ValueError(
                f"Key '{key}' of the {model_name} text tower is missing from "
                'the checkpoint: pass the whole CLIP checkpoint of this '
                'model (or fix the model name).')
        if state_dict[key].shape != own[key].shape:
            raise ValueError(
                f"Key '{key}' has shape {tuple(state_dict[key].shape)} in "
                f'the checkpoint but {tuple(own[key].shape)} in '
                f'{model_name}: the model name does not match the '
                'checkpoint.')
    model.load_state_dict({k: state_dict[k] for k in wanted}, strict=False)
    return model, open_clip.get_tokenizer(model_name)


@torch.no_grad()
def clip_text_embeddings(clip_model: torch.nn.Module,
                         tokenizer,
                         class_names: Sequence[str],
                         template: str = CLIP_TEXT_TEMPLATE,
                         image_space: bool = True) -> torch.Tensor:
    """LIFT's text initialisation of a cosine classifier.

    Each class name (``_`` read as a space) fills ``template``; the text
    tower's L2-normalised embedding is, with ``image_space``, mapped back
    through the image projection (``e @ proj.T``) and normalised again, so it
    lives where the backbone feature (``ln_post`` on the CLS token, before
    the projection) does, as LIFT does for CLIP ViTs.

    Args:
        clip_model (nn.Module): An open_clip ``CLIP`` model with weights.
        tokenizer (callable): Its tokenizer (``open_clip.get_tokenizer``).
        class_names (Sequence[str]): Names in label order.
        template (str): Prompt with one ``{}``. Defaults to
            ``'a photo of a {}.'``.
        image_space (bool): Map to the image tower's width (C) instead of
            the joint embedding (D). Defaults to True.

    Returns:
        torch.Tensor: (num_classes, C) or, without ``image_space``,
        (num_classes, D) unit rows.
    """
    if not class_names:
        raise ValueError('No class names given.')
    if template.count('{}') != 1:
        raise ValueError(
            f"template must contain '{{}}' once, got {template!r}.")
    clip_model.eval()
    prompts = [template.format(name.replace('_', ' ')) for name in class_names]
    device = next(clip_model.parameters()).device
    emb = F.normalize(clip_model.encode_text(tokenizer(prompts).to(device)),
                      dim=-1)  # (K, D)
    if image_space:
        proj = getattr(clip_model.visual, 'proj', None)
        if proj is None:
            raise ValueError(
                'image_space=True needs the image projection visual.proj; '
                'this model has none. Use image_space=False.')
        emb = F.normalize(emb @ proj.t(), dim=-1)  # (K, C)
    return emb.float().cpu()
