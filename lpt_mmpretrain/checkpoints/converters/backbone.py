"""The backbone's checkpoint filter (timm's ``checkpoint_filter_fn`` idea)."""
from typing import Dict, Optional

import torch
from mmengine.logging import print_log

from ..errors import wrong_file_kind
from .timm import convert_timm_vit, is_timm_vit_state_dict

__all__ = ['backbone_state_dict']


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
            raise wrong_file_kind(f'No key of {source}',
                                  f'starts with prefix {prefix!r}:',
                                  'fix init_cfg.prefix.')
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
