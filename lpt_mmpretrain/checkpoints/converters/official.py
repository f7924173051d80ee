"""The released LPT checkpoint's state dict (DongSky/LPT) -> LPTClassifier's.

The file is read and written by
``tools/model_converters/lpt_official_to_mmpretrain.py``. Its state dict
(after the ``module.`` prefix of ``nn.DataParallel`` is stripped) holds

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
from collections import OrderedDict
from typing import Dict, Tuple

import torch

from .timm import convert_timm_vit

__all__ = ['convert_official_state_dict']

_PROMPT_PREFIX = 'prompt_learner.'
# official prompt_learner key -> (our key, expected number of dimensions)
_PROMPT_MAP = OrderedDict([
    ('Prompt_Tokens', ('backbone.prompt', 3)),
    ('Prompt_Tokens_pool', ('neck.prompt', 4)),
    ('Prompt_Keys', ('neck.key', 2)),
    ('head.weight', ('head.fc.weight', 2)),
])


def convert_official_state_dict(state_dict: Dict[str, torch.Tensor]
                                ) -> Tuple[OrderedDict, dict]:
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
            'Not the released LPT phase-2 layout: ' +
            (f'missing {missing}; ' if missing else '') +
            (f'unknown prompt_learner keys {unknown}; ' if unknown else '') +
            f'expected exactly {[_PROMPT_PREFIX + k for k in _PROMPT_MAP]}.')
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
