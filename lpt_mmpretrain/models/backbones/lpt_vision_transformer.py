import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model.weight_init import (PretrainedInit, trunc_normal_,
                                        update_init_info)
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS

from ..utils.timm_convert import (convert_timm_vit, is_timm_vit_state_dict,
                                  load_state_dict_file)

__all__ = ['LPTVisionTransformer']


@MODELS.register_module()
class LPTVisionTransformer(VisionTransformer):
    """Vision Transformer with LPT's deep shared prompts.

    For each of the L blocks, ``prompt_length`` learnable tokens are appended
    after the CLS and patch tokens before the block and dropped after it, so
    every block sees fresh prompts and the sequence length outside the blocks
    never changes. The feature is the CLS token after the final norm.

    Besides ``forward``, the pass is split into :meth:`embed`,
    :meth:`forward_blocks` (a range of blocks, optionally with per-sample
    extra prompts, e.g. LPT's group prompts) and :meth:`forward_final`, so a
    caller can share a prefix of blocks between passes.

    Args:
        prompt_length (int): Number of shared prompt tokens per block; 0
            builds a plain ViT without prompts. Defaults to 10.
        prompt_init_std (float): Std of the truncated-normal init of the
            prompts. Defaults to 0.02.
        frozen (bool): Freeze every parameter except ``prompt`` and keep the
            whole backbone in eval mode (no dropout / drop-path) whatever
            ``train(mode)`` asks. Defaults to True.
        out_type (str): Must be ``'cls_token'``. Defaults to 'cls_token'.
        with_cls_token (bool): Must be True. Defaults to True.
        final_norm (bool): Must be True. Defaults to True.
        out_indices (int | Sequence[int]): Must be the last layer only.
            Defaults to -1.
        **kwargs: Other :class:`mmpretrain.models.VisionTransformer`
            arguments (``arch='base'``, ``img_size=224``, ``patch_size=16``,
            ``drop_rate=0.``, ``drop_path_rate=0.``, ``qkv_bias=True``,
            ``norm_cfg=dict(type='LN', eps=1e-6)``, ``pre_norm=False``,
            ``interpolate_mode='bicubic'``, ``init_cfg=None``, ...).
            ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=None)``
            accepts an MMPretrain ViT / classifier / LPT checkpoint or a timm
            ViT checkpoint and verifies it before loading (see
            :meth:`init_weights`).
    """

    def __init__(self,
                 prompt_length: int = 10,
                 prompt_init_std: float = 0.02,
                 frozen: bool = True,
                 out_type: str = 'cls_token',
                 with_cls_token: bool = True,
                 final_norm: bool = True,
                 out_indices: Union[int, Sequence[int]] = -1,
                 **kwargs) -> None:
        if out_type != 'cls_token' or not with_cls_token or not final_norm:
            raise ValueError(
                'LPTVisionTransformer outputs the CLS token after the final '
                "norm: it needs out_type='cls_token', with_cls_token=True and "
                f'final_norm=True, got out_type={out_type!r}, '
                f'with_cls_token={with_cls_token}, final_norm={final_norm}.')
        if not isinstance(prompt_length, int) or prompt_length < 0:
            raise ValueError('prompt_length must be an int >= 0, got '
                             f'{prompt_length!r}.')
        if not prompt_init_std > 0:
            raise ValueError(
                f'prompt_init_std must be > 0, got {prompt_init_std!r}.')
        super().__init__(
            out_type=out_type,
            with_cls_token=with_cls_token,
            final_norm=final_norm,
            out_indices=out_indices,
            **kwargs)
        if list(self.out_indices) != [self.num_layers - 1]:
            raise ValueError(
                'LPTVisionTransformer only outputs the last layer: use '
                f'out_indices=-1, got {out_indices!r}.')

        self.prompt_length = prompt_length
        self.prompt_init_std = prompt_init_std
        self.frozen = frozen
        if prompt_length > 0:
            self.prompt = nn.Parameter(
                torch.empty(self.num_layers, prompt_length, self.embed_dims))
            self._init_prompt()
        else:
            self.register_parameter('prompt', None)

        if frozen:
            self._freeze_pretrained()
        self.train(self.training)

    def _init_prompt(self) -> None:
        if self.prompt is not None:
            trunc_normal_(self.prompt, std=self.prompt_init_std)

    def _freeze_pretrained(self) -> None:
        # The prompt's flag is left alone: phase 2 freezes it on purpose.
        for name, param in self.named_parameters():
            if name != 'prompt':
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'LPTVisionTransformer':
        """Set train mode; a frozen backbone always stays in eval mode."""
        return super().train(mode and not self.frozen)

    # ------------------------------------------------------------------ #
    # forward pieces
    # ------------------------------------------------------------------ #
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embedding, CLS token and position embedding.

        Args:
            x (torch.Tensor): Images of shape (B, in_channels, H, W).

        Returns:
            torch.Tensor: Tokens of shape (B, 1 + H' * W', C); the position
            embedding is resized to the input's patch grid exactly as
            :class:`VisionTransformer` does.
        """
        if x.dim() != 4:
            raise ValueError('embed expects images of shape (B, C, H, W), '
                             f'got {tuple(x.shape)}.')
        B = x.shape[0]
        x, patch_resolution = self.patch_embed(x)
        cls_token = self.cls_token.expand(B, -1, -1)
        x = torch.cat((cls_token, x), dim=1)
        x = x + resize_pos_embed(
            self.pos_embed,
            self.patch_resolution,
            patch_resolution,
            mode=self.interpolate_mode,
            num_extra_tokens=self.num_extra_tokens)
        x = self.drop_after_pos(x)
        return self.pre_norm(x)

    def forward_blocks(
            self,
            tokens: torch.Tensor,
            start: int,
            end: int,
            extra_prompts: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Run blocks ``start .. end - 1`` with prompts appended.

        Before block i the layer-i shared prompt (and, when given, the
        per-sample ``extra_prompts[:, i - start]``) are appended after the
        tokens; after the block everything beyond the input tokens is dropped.

        Args:
            tokens (torch.Tensor): Tokens of shape (B, N, C).
            start (int): First block, ``0 <= start <= end``.
            end (int): One past the last block, ``end <= num_layers``.
            extra_prompts (torch.Tensor, optional): Per-sample prompts of
                shape (B, end - start, P2, C), appended after the shared
                ones. Defaults to None.

        Returns:
            torch.Tensor: Tokens of shape (B, N, C).
        """
        if tokens.dim() != 3 or tokens.shape[-1] != self.embed_dims:
            raise ValueError(f'forward_blocks expects tokens of shape (B, N, '
                             f'{self.embed_dims}), got {tuple(tokens.shape)}.')
        if not (isinstance(start, int) and isinstance(end, int)
                and 0 <= start <= end <= self.num_layers):
            raise ValueError(
                f'forward_blocks needs 0 <= start <= end <= {self.num_layers}'
                f' (num_layers), got start={start!r}, end={end!r}.')
        B, N, _ = tokens.shape
        if extra_prompts is not None:
            expected = (B, end - start, '*', self.embed_dims)
            if (extra_prompts.dim() != 4 or extra_prompts.shape[0] != B
                    or extra_prompts.shape[1] != end - start
                    or extra_prompts.shape[3] != self.embed_dims):
                raise ValueError(
                    'extra_prompts must have shape (B, end - start, P2, C) = '
                    f'{expected}, got {tuple(extra_prompts.shape)}.')

        for i in range(start, end):
            parts = [tokens]
            if self.prompt is not None:
                parts.append(self.prompt[i].unsqueeze(0).expand(B, -1, -1))
            if extra_prompts is not None:
                parts.append(extra_prompts[:, i - start])
            x = torch.cat(parts, dim=1) if len(parts) > 1 else tokens
            # (B, N + P (+ P2), C) -> keep the first N tokens
            tokens = self.layers[i](x)[:, :N]
        return tokens

    def forward_final(self, tokens: torch.Tensor) -> torch.Tensor:
        """Final norm and CLS token: (B, N, C) -> (B, C)."""
        return self.ln1(tokens)[:, 0]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        """Images (B, 3, H, W) -> ``(feature,)`` with feature (B, C)."""
        tokens = self.embed(x)
        tokens = self.forward_blocks(tokens, 0, self.num_layers)
        return (self.forward_final(tokens), )

    # ------------------------------------------------------------------ #
    # initialisation / checkpoint loading
    # ------------------------------------------------------------------ #
    def init_weights(self) -> None:
        """Initialise weights, then load ``Pretrained`` checkpoints.

        Non-pretrained init (position embedding, FFNs, prompts) runs first.
        Then each ``dict(type='Pretrained', checkpoint=..., prefix=None)`` in
        ``init_cfg`` is read through MMEngine (or ``safetensors``), unwrapped
        from ``'state_dict'`` / ``'model'``, restricted to ``prefix`` (or to
        ``'backbone.'`` keys when the checkpoint is a classifier), converted
        when it uses timm's layout, and verified: every backbone tensor
        except ``prompt`` must be present with a compatible shape
        (``pos_embed`` may have another grid size: it is resized). Keys
        outside the backbone (``head.*``, ...) are ignored with a log line. A
        ``prompt`` in the checkpoint is loaded and must match (L, P, C).
        """
        if self.is_init:
            super().init_weights()  # logs "called more than once"
            return
        init_cfgs = self.init_cfg
        if isinstance(init_cfgs, dict):
            init_cfgs = [init_cfgs]
        init_cfgs = list(init_cfgs or [])
        pretrained = [
            cfg for cfg in init_cfgs
            if cfg.get('type') in ('Pretrained', PretrainedInit)
        ]
        others = [cfg for cfg in init_cfgs if cfg not in pretrained]

        original_cfg = self.init_cfg
        self.init_cfg = others or None
        try:
            super().init_weights()
        finally:
            self.init_cfg = original_cfg
        self._init_prompt()
        for cfg in pretrained:
            self._load_pretrained(cfg)
        if self.frozen:
            self._freeze_pretrained()

    def _load_pretrained(self, cfg: dict) -> None:
        unknown_args = set(cfg) - {
            'type', 'checkpoint', 'prefix', 'map_location'
        }
        if 'checkpoint' not in cfg or unknown_args:
            raise ValueError(
                "init_cfg of type 'Pretrained' takes checkpoint=..., and "
                f'optionally prefix / map_location; got {cfg}.')
        checkpoint = cfg['checkpoint']
        prefix = cfg.get('prefix')
        print_log(
            f'{type(self).__name__}: load from {checkpoint}', logger='current')
        state_dict, _ = load_state_dict_file(
            checkpoint, map_location=cfg.get('map_location', 'cpu'))

        if prefix is None and any(
                k.startswith('backbone.') for k in state_dict):
            prefix = 'backbone.'  # an MMPretrain classifier checkpoint
        if prefix is not None:
            outside = [k for k in state_dict if not k.startswith(prefix)]
            state_dict = {
                k[len(prefix):]: v
                for k, v in state_dict.items() if k.startswith(prefix)
            }
            if not state_dict:
                raise ValueError(f'No key of {checkpoint} starts with prefix '
                                 f'{prefix!r}: fix init_cfg.prefix.')
            if outside:
                print_log(
                    f'Ignored {len(outside)} key(s) outside {prefix!r} in '
                    f'{checkpoint}, e.g. {outside[:5]}.',
                    logger='current')
        if is_timm_vit_state_dict(state_dict):
            print_log(
                'Detected a timm ViT checkpoint; converting it.',
                logger='current')
            state_dict = convert_timm_vit(state_dict)

        state_dict = self._check_state_dict(state_dict, checkpoint)
        incompatible = self.load_state_dict(state_dict, strict=False)
        missing = set(incompatible.missing_keys) - {'prompt'}
        if missing or incompatible.unexpected_keys:  # _check_state_dict bug
            raise RuntimeError(f'Loading {checkpoint} left missing keys '
                               f'{sorted(missing)} and unexpected keys '
                               f'{incompatible.unexpected_keys}.')
        if hasattr(self, '_params_init_info'):
            update_init_info(
                self,
                init_info=f'{type(self).__name__}: load from {checkpoint}')

    def _check_state_dict(self, state_dict: Dict[str, torch.Tensor],
                          checkpoint: str) -> Dict[str, torch.Tensor]:
        """Verify a backbone state dict; return the entries to load."""
        own = self.state_dict()
        where = f'Checkpoint {checkpoint} does not fit {type(self).__name__}'

        for key, param in own.items():
            if key == 'prompt':
                continue
            if key not in state_dict:
                raise ValueError(
                    f"{where}: key '{key}' (shape {tuple(param.shape)}) is "
                    f'missing from the checkpoint. Likely fix: '
                    f'{self._missing_hint(key, state_dict)}')
            ckpt_shape = tuple(state_dict[key].shape)
            if key == 'pos_embed':
                problem = self._pos_embed_problem(ckpt_shape)
                if problem:
                    raise ValueError(
                        f"{where}: key 'pos_embed' has shape {ckpt_shape} in "
                        f'the checkpoint but {tuple(param.shape)} in the '
                        f'model ({problem}). Likely fix: the arch '
                        '(embed_dims) must match the checkpoint; a ViT '
                        'pos_embed is (1, 1 + h * w, C) with a square grid.')
            elif ckpt_shape != tuple(param.shape):
                raise ValueError(
                    f"{where}: key '{key}' has shape {ckpt_shape} in the "
                    f'checkpoint but {tuple(param.shape)} in the model. '
                    'Likely fix: '
                    f'{self._shape_hint(key, ckpt_shape, tuple(param.shape))}')

        if 'prompt' in state_dict:
            ckpt_shape = tuple(state_dict['prompt'].shape)
            model_shape = (None if self.prompt is None else tuple(
                self.prompt.shape))
            if ckpt_shape != model_shape:
                raise ValueError(
                    f"{where}: the shared prompt 'prompt' has shape "
                    f'{ckpt_shape} (num_layers, prompt_length, width) in the '
                    f'checkpoint but the model has {model_shape} '
                    f'(prompt_length={self.prompt_length}, '
                    f'width={self.embed_dims}). Likely fix: set '
                    'prompt_length (and arch) to the checkpoint\'s.')

        # Extra keys inside the backbone's own modules would be silently
        # dropped and change the output (e.g. layer scale, pre_norm): refuse.
        namespaces = {name for name, _ in self.named_children()}
        namespaces |= set(self._parameters)
        extra = [k for k in state_dict if k not in own]
        for key in extra:
            if key.split('.')[0] in namespaces:
                raise ValueError(
                    f"{where}: key '{key}' (shape "
                    f'{tuple(state_dict[key].shape)}) has no counterpart in '
                    'the model. Likely fix: match the checkpoint\'s '
                    'architecture options (layer_scale_init_value for '
                    '*gamma*, pre_norm=True for pre_norm.*, arch num_layers '
                    'for extra layers).')
        if extra:
            print_log(
                f'Ignored {len(extra)} checkpoint key(s) that are not '
                f'backbone parameters: {extra[:10]}.',
                logger='current')
        return {k: v for k, v in state_dict.items() if k in own}

    def _pos_embed_problem(self, ckpt_shape: Tuple[int, ...]) -> str:
        if len(ckpt_shape) != 3 or ckpt_shape[0] != 1:
            return 'not of shape (1, L, C)'
        if ckpt_shape[2] != self.embed_dims:
            return f'width {ckpt_shape[2]} != embed_dims {self.embed_dims}'
        num_patches = ckpt_shape[1] - self.num_extra_tokens
        side = math.isqrt(max(num_patches, 0))
        if num_patches <= 0 or side * side != num_patches:
            return (f'{ckpt_shape[1]} tokens are not 1 CLS token plus a '
                    'square grid of patches')
        return ''

    def _missing_hint(self, key: str, state_dict: Dict[str,
                                                       torch.Tensor]) -> str:
        if not any(k.startswith('layers.') for k in state_dict):
            return ('this is not a ViT checkpoint (MMPretrain '
                    'VisionTransformer, LPT or timm ViT layout), or init_cfg '
                    'prefix is wrong.')
        parts = key.split('.')
        if parts[0] == 'layers':
            ckpt_layers = _num_layers(state_dict)
            if int(parts[1]) >= ckpt_layers:
                return (f'wrong arch: the checkpoint has {ckpt_layers} '
                        f'layers, the model {self.num_layers}.')
            if key.endswith('attn.qkv.bias'):
                return 'the checkpoint has no qkv bias: set qkv_bias=False.'
            if 'gamma' in key:
                return ('the checkpoint has no layer scale: set '
                        'layer_scale_init_value=0.')
        if parts[0] == 'pre_norm':
            return 'the checkpoint has no pre-norm: set pre_norm=False.'
        if parts[0] == 'ln1':
            return ('the checkpoint has no final norm on the tokens (e.g. a '
                    'timm average-pooling ViT); LPT needs a CLS-token ViT.')
        return 'wrong arch or not a ViT checkpoint.'

    def _shape_hint(self, key: str, ckpt_shape: Tuple[int, ...],
                    model_shape: Tuple[int, ...]) -> str:
        if (key == 'patch_embed.projection.weight' and len(ckpt_shape) == 4
                and len(model_shape) == 4):
            if ckpt_shape[2:] != model_shape[2:]:
                return (f'patch size: the checkpoint uses patch_size='
                        f'{ckpt_shape[2]}, the model {model_shape[2]}.')
            if ckpt_shape[1] != model_shape[1]:
                return (f'in_channels: the checkpoint uses {ckpt_shape[1]}, '
                        f'the model {model_shape[1]}.')
        return ('wrong arch (embed_dims / feedforward_channels / num_heads) '
                'for this checkpoint, or not a ViT checkpoint.')


def _num_layers(state_dict: Dict[str, torch.Tensor]) -> int:
    indices: List[int] = [
        int(k.split('.')[1]) for k in state_dict
        if k.startswith('layers.') and k.split('.')[1].isdigit()
    ]
    return max(indices) + 1 if indices else 0
