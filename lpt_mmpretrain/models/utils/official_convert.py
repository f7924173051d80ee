"""Convert the released LPT checkpoint (DongSky/LPT) to an LPTClassifier one.

The released file is ``{'state_dict': ...}`` saved from ``nn.DataParallel``
(keys may start with ``module.``), possibly with other entries such as the
training arguments. Its state dict holds

- a timm ViT: ``patch_embed.proj``, ``cls_token``, ``pos_embed``,
  ``blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``,
  ``norm`` (converted by :func:`convert_timm_vit`, under ``backbone.``);
- ``prompt_learner.Prompt_Tokens`` (L, P, C): the shared prompt, our
  ``backbone.prompt``;
- ``prompt_learner.Prompt_Tokens_pool`` (pool, L - share_blocks, P, C): our
  ``neck.prompt``;
- ``prompt_learner.Prompt_Keys`` (pool, C): our ``neck.key``;
- ``prompt_learner.head.weight`` (C, classes), the transpose of a Linear
  weight: our ``head.fc.weight`` (classes, C).
"""
import argparse
import copy
import os.path as osp
import pickle
from collections import OrderedDict
from typing import Dict, Tuple

import torch
from mmpretrain.registry import MODELS

from .timm_convert import convert_timm_vit

__all__ = [
    'OFFICIAL_SAFE_GLOBALS', 'load_official_checkpoint',
    'convert_official_state_dict', 'convert_official_checkpoint',
    'prompt_only_path'
]

# Non-tensor objects the released training script may pickle next to the
# state dict (its argparse arguments). Allow-listed for this loader only.
OFFICIAL_SAFE_GLOBALS = [argparse.Namespace]

_PROMPT_PREFIX = 'prompt_learner.'
# official prompt_learner key -> (our key, expected number of dimensions)
_PROMPT_MAP = OrderedDict([
    ('Prompt_Tokens', ('backbone.prompt', 3)),
    ('Prompt_Tokens_pool', ('neck.prompt', 4)),
    ('Prompt_Keys', ('neck.key', 2)),
    ('head.weight', ('head.fc.weight', 2)),
])


def load_official_checkpoint(filename: str) -> Dict[str, torch.Tensor]:
    """Read the released checkpoint safely; return its state dict.

    Loads with ``torch.load(weights_only=True)``, allowing the types of
    :data:`OFFICIAL_SAFE_GLOBALS` for this call only, unwraps
    ``'state_dict'`` and strips a ``module.`` prefix (``nn.DataParallel``).

    Args:
        filename (str): The released ``.pth`` file.

    Returns:
        dict: ``name -> tensor`` in the released code's names.
    """
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} does not exist.')
    try:
        with torch.serialization.safe_globals(OFFICIAL_SAFE_GLOBALS):
            checkpoint = torch.load(
                filename, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        # engine imports models: import it here, not at module level
        from lpt_mmpretrain.engine.compat.checkpoint import _refused_name
        allowed = [f'{t.__module__}.{t.__name__}'
                   for t in OFFICIAL_SAFE_GLOBALS]
        raise pickle.UnpicklingError(
            f'Refused to load {filename}: besides tensors it holds a pickled '
            'object of a type that is not allow-listed '
            f'({_refused_name(str(e))}); the released LPT checkpoint holds '
            f'tensors and at most {allowed}. Loading it could run arbitrary '
            'code, so this is not the released file or it was modified. If '
            'you trust it, load it with torch.load(weights_only=False) and '
            f"re-save its 'state_dict' only.\ntorch said: {e}") from e
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{filename} holds a {type(checkpoint).__name__}, '
                         'not a checkpoint dict.')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict):
        raise ValueError(f"{filename}: 'state_dict' is a "
                         f'{type(state_dict).__name__}, not a dict.')
    tensors = {k: v for k, v in state_dict.items() if torch.is_tensor(v)}
    if len(tensors) != len(state_dict):
        others = [k for k in state_dict if k not in tensors]
        raise ValueError(f'{filename}: the state dict holds non-tensor '
                         f'entries {others[:5]}; it is not a model state '
                         'dict.')
    if any(k.startswith('module.') for k in tensors):
        if not all(k.startswith('module.') for k in tensors):
            raise ValueError(
                f"{filename}: only some keys start with 'module.'; the "
                'state dict mixes two models.')
        tensors = {k[len('module.'):]: v for k, v in tensors.items()}
    return tensors


def convert_official_state_dict(
        state_dict: Dict[str, torch.Tensor]) -> Tuple[OrderedDict, dict]:
    """Map the released model's keys and layouts to LPTClassifier's.

    Args:
        state_dict (dict): The released state dict (no ``module.``).

    Returns:
        tuple[OrderedDict, dict]: Our state dict, and the architecture it
        implies: ``num_layers``, ``embed_dims``, ``prompt_length``,
        ``pool_size``, ``share_blocks``, ``num_classes``.
    """
    prompts = {
        k[len(_PROMPT_PREFIX):]: v
        for k, v in state_dict.items() if k.startswith(_PROMPT_PREFIX)
    }
    unknown = sorted(set(prompts) - set(_PROMPT_MAP))
    missing = [_PROMPT_PREFIX + k for k in _PROMPT_MAP if k not in prompts]
    if unknown or missing:
        raise ValueError(
            'Not the released LPT phase-2 layout: '
            + (f'missing {missing}; ' if missing else '')
            + (f'unknown prompt_learner keys {unknown}; ' if unknown else '')
            + f'expected exactly {[_PROMPT_PREFIX + k for k in _PROMPT_MAP]}.')
    for name, (_, ndim) in _PROMPT_MAP.items():
        if prompts[name].dim() != ndim:
            raise ValueError(
                f'{_PROMPT_PREFIX}{name} has shape '
                f'{tuple(prompts[name].shape)}; the released layout has '
                f'{ndim} dimensions.')

    vit = {
        k: v
        for k, v in state_dict.items() if not k.startswith(_PROMPT_PREFIX)
    }
    converted = OrderedDict(
        ('backbone.' + k, v) for k, v in convert_timm_vit(vit).items())

    shared = prompts['Prompt_Tokens']  # (L, P, C)
    pool = prompts['Prompt_Tokens_pool']  # (pool, L - share_blocks, P, C)
    keys = prompts['Prompt_Keys']  # (pool, C)
    head = prompts['head.weight']  # (C, classes)
    num_layers, prompt_length, embed_dims = shared.shape
    arch = dict(
        num_layers=num_layers,
        embed_dims=embed_dims,
        prompt_length=prompt_length,
        pool_size=pool.shape[0],
        share_blocks=num_layers - pool.shape[1],
        num_classes=head.shape[1])
    problems = []
    if pool.shape[2:] != shared.shape[1:]:
        problems.append(f'Prompt_Tokens_pool {tuple(pool.shape)} does not '
                        f'end in (P, C) = {tuple(shared.shape[1:])}')
    if not 0 <= arch['share_blocks'] < num_layers:
        problems.append(f'Prompt_Tokens_pool covers {pool.shape[1]} blocks '
                        f'of {num_layers}')
    if tuple(keys.shape) != (pool.shape[0], embed_dims):
        problems.append(f'Prompt_Keys {tuple(keys.shape)} is not (pool, C) '
                        f'= {(pool.shape[0], embed_dims)}')
    if head.shape[0] != embed_dims:
        problems.append(f'head.weight {tuple(head.shape)} is not (C, '
                        f'classes) with C = {embed_dims}')
    width = converted.get('backbone.cls_token')
    if width is not None and width.shape[-1] != embed_dims:
        problems.append(f'the ViT is {width.shape[-1]} wide, the prompts '
                        f'{embed_dims}')
    if problems:
        raise ValueError('Inconsistent released LPT checkpoint: ' +
                         '; '.join(problems) + '.')

    for name, (ours, _) in _PROMPT_MAP.items():
        converted[ours] = prompts[name]
    # NormedLinear stores (C, classes) and normalises columns; our head is
    # a Linear weight (classes, C) with normalised rows.
    converted['head.fc.weight'] = head.t().contiguous()
    return converted, arch


def _arch_of_model(model: torch.nn.Module) -> dict:
    return dict(
        num_layers=model.backbone.num_layers,
        embed_dims=model.backbone.embed_dims,
        prompt_length=model.backbone.prompt_length,
        pool_size=model.neck.pool_size,
        share_blocks=model.share_blocks,
        num_classes=model.head.num_classes)


def prompt_only_path(dst: str) -> str:
    """The prompt-only file written next to ``dst``: ``<stem>_prompts.pth``."""
    stem, _ = osp.splitext(dst)
    return stem + '_prompts.pth'


def convert_official_checkpoint(src: str, dst: str, model_cfg: dict) -> dict:
    """Convert the released checkpoint into a full LPTClassifier checkpoint.

    The model of ``model_cfg`` is built (no weights read), its state dict is
    replaced by the converted one (every key must match, with its shape),
    and two files are written: ``dst``, a full checkpoint
    ``{'state_dict', 'meta'}``, and next to it (:func:`prompt_only_path`)
    a prompt-only checkpoint whose frozen backbone is ``dst``'s.

    Args:
        src (str): The released ``.pth`` file.
        dst (str): The full checkpoint to write.
        model_cfg (dict): The LPTClassifier config, e.g. the ``model`` of
            ``configs/lpt/phase2_places_official.py``; its backbone's
            ``init_cfg`` is pointed at ``dst``.

    Returns:
        dict: The saved full checkpoint.
    """
    from lpt_mmpretrain.engine.compat.checkpoint import atomic_torch_save
    from lpt_mmpretrain.engine.prompt_checkpoint import save_prompt_checkpoint

    state_dict, arch = convert_official_state_dict(
        load_official_checkpoint(src))
    model_cfg = copy.deepcopy(dict(model_cfg))
    if model_cfg.get('type') != 'LPTClassifier' or not model_cfg.get('neck'):
        raise ValueError(
            'The config must build an LPTClassifier with a PromptPoolNeck '
            '(a phase-2 model), e.g. configs/lpt/phase2_places_official.py.')
    model_cfg['backbone'] = dict(
        model_cfg['backbone'],
        init_cfg=dict(type='Pretrained', checkpoint=dst))
    model = MODELS.build(model_cfg)
    built = _arch_of_model(model)
    if built != arch:
        diff = {k: (arch[k], built[k]) for k in arch if arch[k] != built[k]}
        raise ValueError(
            f'{src} does not fit the config: (checkpoint, config) differ in '
            f'{diff}. Set the config to the checkpoint\'s {arch}.')
    model.load_state_dict(state_dict, strict=True)

    meta = dict(
        converted_from='official LPT (DongSky/LPT)',
        source=osp.basename(src),
        **arch)
    checkpoint = dict(state_dict=model.state_dict(), meta=meta)
    atomic_torch_save(checkpoint, dst)
    save_prompt_checkpoint(model, prompt_only_path(dst), dict(meta))
    return checkpoint
