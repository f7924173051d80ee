from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ...checkpoints import CLIP_PROJ_KEY, load_state_dict_file

__all__ = ['CLIPProjectionNeck']


@MODELS.register_module()
class CLIPProjectionNeck(BaseModule):
    """CLIP's image projection ``x @ proj`` as an ImageClassifier neck.

    Maps the backbone feature (``ln_post`` on the CLS token, width C) to
    CLIP's joint image-text embedding (D), e.g. for a head initialised from
    joint-space text embeddings. The weight comes from a checkpoint written
    by ``tools/model_converters/clip_to_mmpretrain.py --keep-proj`` and is
    verified when loaded.

    Args:
        in_channels (int): Width of the backbone feature. Defaults to 768.
        out_channels (int): Width of the joint embedding. Defaults to 512.
        frozen (bool): Keep the projection fixed. Defaults to True.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...,
            prefix='neck.')`` reads ``<prefix>projection.weight`` of shape
            (out_channels, in_channels). Defaults to None (random weight,
            for tests).
    """

    def __init__(self,
                 in_channels: int = 768,
                 out_channels: int = 512,
                 frozen: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.projection = nn.Linear(in_channels, out_channels, bias=False)
        self.frozen = frozen
        if frozen:
            self.projection.weight.requires_grad_(False)

    def init_weights(self) -> None:
        """Load and verify the projection from a ``Pretrained`` init_cfg."""
        cfg = self.init_cfg
        if not (isinstance(cfg, dict) and cfg.get('type') == 'Pretrained'):
            super().init_weights()
            return
        checkpoint = cfg['checkpoint']
        prefix = cfg.get('prefix', 'neck.')
        state_dict, _ = load_state_dict_file(checkpoint, map_location='cpu')
        key = f'{prefix}projection.weight'
        expected = (self.out_channels, self.in_channels)
        if key not in state_dict:
            raise ValueError(
                f"{checkpoint} has no '{key}': convert the CLIP weights with "
                'tools/model_converters/clip_to_mmpretrain.py --keep-proj '
                f"(it writes '{CLIP_PROJ_KEY}'), or fix init_cfg.prefix.")
        if tuple(state_dict[key].shape) != expected:
            raise ValueError(
                f"'{key}' in {checkpoint} has shape "
                f'{tuple(state_dict[key].shape)}, the neck expects '
                f'(out_channels, in_channels) = {expected}: set in_channels '
                "to the backbone width and out_channels to CLIP's embed dim.")
        with torch.no_grad():
            self.projection.weight.copy_(state_dict[key])
        self._is_init = True
        print_log(
            f'CLIPProjectionNeck: loaded {key} from {checkpoint}.',
            logger='current')

    def forward(self, inputs: Tuple[torch.Tensor]) -> Tuple[torch.Tensor]:
        """``(feature (B, C),)`` -> ``(embedding (B, D),)``."""
        x = inputs[-1] if isinstance(inputs, (tuple, list)) else inputs
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'CLIPProjectionNeck expects (B, {self.in_channels}) '
                f'features, got {tuple(x.shape)}.')
        return (self.projection(x), )
