from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model.weight_init import trunc_normal_, update_init_info
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.backbones.vision_transformer import \
    TransformerEncoderLayer
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.models.utils.attention import MultiheadAttention
from mmpretrain.registry import MODELS

from ...checkpoints import (PROMPT_KEY, complete_prompt_only,
                            pretrained_state_dict, split_init_cfg)
from ...checks import shape_error

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
        self._loading_pretrained = False
        self._register_load_hooks()

    def _register_load_hooks(self) -> None:
        """Register the load-state-dict hooks: in ``__init__``, and again on
        a shallow copy (a task's view), which must not run its original's."""
        self._register_load_state_dict_pre_hook(self._fill_frozen_weights)

    def _init_prompt(self) -> None:
        if self.prompt is not None:
            trunc_normal_(self.prompt, std=self.prompt_init_std)

    def _freeze_pretrained(self) -> None:
        # The prompt's flag is left alone: phase 2 freezes it on purpose.
        for name, param in self.named_parameters():
            if name != PROMPT_KEY:
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'LPTVisionTransformer':
        """Set train mode; a frozen backbone always stays in eval mode."""
        super().train(mode and not self.frozen)
        return self  # MMPretrain's BaseBackbone.train returns None

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
            raise shape_error('embed', 'images', '(B, C, H, W)', x.shape)
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

    def forward_blocks(self,
                       tokens: torch.Tensor,
                       start: int,
                       end: int,
                       extra_prompts: Optional[torch.Tensor] = None,
                       key_mask: Optional[torch.Tensor] = None
                       ) -> torch.Tensor:
        """Run blocks ``start .. end - 1`` with prompts appended.

        Before block i the layer-i shared prompt (and, when given, the
        per-sample ``extra_prompts[:, i - start]``) are appended after the
        tokens; after the block everything beyond the input tokens is dropped.

        ``key_mask`` (timm's ``attn_mask`` pattern) lets samples of one batch
        carry different numbers of extra prompts: padding tokens are masked
        out of the attention as keys, so they change no other token, and
        their own outputs are dropped with the prompts. A block whose mask is
        all True runs as MMPretrain's layer itself.

        Args:
            tokens (torch.Tensor): Tokens of shape (B, N, C).
            start (int): First block, ``0 <= start <= end``.
            end (int): One past the last block, ``end <= num_layers``.
            extra_prompts (torch.Tensor, optional): Per-sample prompts of
                shape (B, end - start, P2, C), appended after the shared
                ones. Defaults to None.
            key_mask (torch.Tensor, optional): (B, end - start, P2) bool,
                True where an extra prompt is attended in that block (the
                tokens and the shared prompt always are). Defaults to None:
                every extra prompt is.

        Returns:
            torch.Tensor: Tokens of shape (B, N, C).
        """
        if tokens.dim() != 3 or tokens.shape[-1] != self.embed_dims:
            raise shape_error('forward_blocks', 'tokens',
                              f'(B, N, {self.embed_dims})', tokens.shape)
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
        masked = [False] * (end - start)
        if key_mask is not None:
            if (extra_prompts is None
                    or tuple(key_mask.shape) != tuple(extra_prompts.shape[:3])
                    or key_mask.dtype != torch.bool):
                raise ValueError(
                    'key_mask must be a bool tensor of extra_prompts\' shape '
                    '(B, end - start, P2), and needs extra_prompts; got '
                    f'{tuple(key_mask.shape)} ({key_mask.dtype}).')
            if torch.compiler.is_exporting():
                masked = [True] * (end - start)  # no data-dependent branch
            else:  # one host sync for all blocks: which need the mask
                masked = (~key_mask).any(dim=-1).any(dim=0).tolist()

        for i in range(start, end):
            parts = [tokens]
            if self.prompt is not None:
                parts.append(self.prompt[i].unsqueeze(0).expand(B, -1, -1))
            if extra_prompts is not None:
                parts.append(extra_prompts[:, i - start])
            x = torch.cat(parts, dim=1) if len(parts) > 1 else tokens
            # (B, N + P (+ P2), C) -> keep the first N tokens
            if masked[i - start]:
                keys = torch.ones(
                    B, x.shape[1], dtype=torch.bool, device=x.device)
                keys[:, x.shape[1] - key_mask.shape[2]:] = key_mask[:,
                                                                    i - start]
                tokens = self.forward_masked_block(i, x, keys)[:, :N]
            else:
                tokens = self.layers[i](x)[:, :N]
        return tokens

    def forward_masked_block(self, i: int, x: torch.Tensor,
                             key_mask: torch.Tensor) -> torch.Tensor:
        """Block i on tokens (B, T, C) whose attention ignores masked keys.

        MMPretrain's ``TransformerEncoderLayer`` takes no attention mask;
        this runs the layer's own submodules (``ln1``, ``attn.qkv`` /
        ``proj``, ``ln2``, ``ffn``) in its order, with
        ``F.scaled_dot_product_attention`` and a key mask. Masked tokens do
        not change the others; their own outputs are meaningless.

        Args:
            i (int): The block.
            x (torch.Tensor): Tokens (B, T, C).
            key_mask (torch.Tensor): (B, T) bool, True where a key counts.

        Returns:
            torch.Tensor: Tokens (B, T, C).
        """
        layer = self.layers[i]
        attn = getattr(layer, 'attn', None)
        if (not isinstance(layer, TransformerEncoderLayer)
                or not isinstance(attn, MultiheadAttention)
                or attn.v_shortcut):
            raise TypeError(
                f'Block {i} is a {type(layer).__name__}: a key mask needs '
                'MMPretrain TransformerEncoderLayer blocks '
                '(MultiheadAttention without v_shortcut).')
        B, T, _ = x.shape
        h = layer.ln1(x)
        # (3, B, heads, T, head_dims)
        qkv = attn.qkv(h).reshape(B, T, 3, attn.num_heads,
                                  attn.head_dims).permute(2, 0, 3, 1, 4)
        dropout = attn.attn_drop if attn.training else 0.
        out = F.scaled_dot_product_attention(
            qkv[0],
            qkv[1],
            qkv[2],
            attn_mask=key_mask[:, None, None, :],
            dropout_p=dropout)
        out = out.transpose(1, 2).reshape(B, T, attn.embed_dims)
        x = x + attn.out_drop(attn.gamma1(attn.proj_drop(attn.proj(out))))
        return layer.ffn(layer.ln2(x), identity=x)

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

        Non-pretrained init (position embedding, FFNs, prompts) runs first,
        then each ``dict(type='Pretrained', checkpoint=..., prefix=None)`` of
        ``init_cfg`` goes through :meth:`load_pretrained`.
        """
        if self.is_init:
            super().init_weights()  # logs "called more than once"
            return
        pretrained, others = split_init_cfg(self.init_cfg)
        original_cfg = self.init_cfg
        self.init_cfg = others or None
        try:
            super().init_weights()
        finally:
            self.init_cfg = original_cfg
        self._init_prompt()
        for cfg in pretrained:
            self.load_pretrained(cfg['checkpoint'], cfg.get('prefix'),
                                 cfg.get('map_location', 'cpu'))
        if self.frozen:
            self._freeze_pretrained()

    @property
    def pretrained_checkpoint(self) -> Optional[str]:
        """The checkpoint of the last ``Pretrained`` ``init_cfg``, if any."""
        pretrained, _ = split_init_cfg(self.init_cfg)
        return pretrained[-1]['checkpoint'] if pretrained else None

    def load_pretrained(self,
                        checkpoint: str,
                        prefix: Optional[str] = None,
                        map_location: str = 'cpu') -> None:
        """Load pretrained ViT weights, verified, keeping the prompt.

        The file is read, filtered to backbone keys and checked by
        :func:`pretrained_state_dict` (MMPretrain ViT, classifier or LPT
        checkpoints, timm ViT checkpoints; ``pos_embed`` may have another
        grid: it is resized).

        Args:
            checkpoint (str): Path or URL.
            prefix (str, optional): Keep the keys under this prefix.
                Defaults to None (``'backbone.'`` for classifiers).
            map_location (str): As in ``torch.load``. Defaults to 'cpu'.
        """
        print_log(
            f'{type(self).__name__}: load from {checkpoint}', logger='current')
        state_dict = pretrained_state_dict(self, checkpoint, prefix,
                                           map_location)
        self._loading_pretrained = True
        try:
            self.load_state_dict(state_dict, strict=False)
        finally:
            self._loading_pretrained = False
        if hasattr(self, '_params_init_info'):
            update_init_info(
                self,
                init_info=f'{type(self).__name__}: load from {checkpoint}')

    def _fill_frozen_weights(self, state_dict: dict, prefix: str,
                             *args) -> None:
        """Load-state-dict pre-hook: complete a prompt-only state dict.

        See :func:`complete_prompt_only`: the frozen weights come from this
        backbone or its pretrained checkpoint, verified by fingerprint, so
        every loader gives the full model's output or an error.
        """
        if not self._loading_pretrained:
            complete_prompt_only(self, state_dict, prefix)
