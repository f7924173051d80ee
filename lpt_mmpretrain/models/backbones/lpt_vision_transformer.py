import math
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model.weight_init import (PretrainedInit, trunc_normal_,
                                        update_init_info)
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.backbones.vision_transformer import \
    TransformerEncoderLayer
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.models.utils.attention import MultiheadAttention
from mmpretrain.registry import MODELS

from ..utils.state_dict_check import (CheckpointMismatchError,
                                      check_state_dict, decode_text,
                                      tensors_fingerprint)
from ..utils.timm_convert import backbone_state_dict, load_state_dict_file

__all__ = ['LPTVisionTransformer', 'FINGERPRINT_KEY', 'SOURCE_KEY']

# Backbone state-dict entries of a prompt-only file (uint8 text tensors): the
# fingerprint and path of the frozen weights it was trained on.
FINGERPRINT_KEY = 'frozen_fingerprint'
SOURCE_KEY = 'frozen_source'


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
        self._register_load_state_dict_pre_hook(self._fill_frozen_weights)

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
            extra_prompts: Optional[torch.Tensor] = None,
            key_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
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
                keys[:, x.shape[1] - key_mask.shape[2]:] = key_mask[:, i -
                                                                     start]
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
        pretrained = self._pretrained_cfgs()
        others = [cfg for cfg in self._init_cfgs() if cfg not in pretrained]
        original_cfg = self.init_cfg
        self.init_cfg = others or None
        try:
            super().init_weights()
        finally:
            self.init_cfg = original_cfg
        self._init_prompt()
        for cfg in pretrained:
            unknown_args = set(cfg) - {
                'type', 'checkpoint', 'prefix', 'map_location'
            }
            if 'checkpoint' not in cfg or unknown_args:
                raise ValueError(
                    "init_cfg of type 'Pretrained' takes checkpoint=..., and "
                    f'optionally prefix / map_location; got {cfg}.')
            self.load_pretrained(cfg['checkpoint'], cfg.get('prefix'),
                                 cfg.get('map_location', 'cpu'))
        if self.frozen:
            self._freeze_pretrained()

    def _init_cfgs(self) -> List[dict]:
        cfgs = self.init_cfg
        return list([cfgs] if isinstance(cfgs, dict) else cfgs or [])

    def _pretrained_cfgs(self) -> List[dict]:
        return [
            cfg for cfg in self._init_cfgs()
            if cfg.get('type') in ('Pretrained', PretrainedInit)
        ]

    @property
    def pretrained_checkpoint(self) -> Optional[str]:
        """The checkpoint of the last ``Pretrained`` ``init_cfg``, if any."""
        cfgs = self._pretrained_cfgs()
        return cfgs[-1].get('checkpoint') if cfgs else None

    def load_pretrained(self,
                        checkpoint: str,
                        prefix: Optional[str] = None,
                        map_location: str = 'cpu') -> None:
        """Load pretrained ViT weights, verified, keeping the prompt.

        The file is read through MMEngine (or ``safetensors``) and turned
        into backbone keys by :func:`backbone_state_dict` (MMPretrain ViT,
        classifier or LPT checkpoints, timm ViT checkpoints). Every backbone
        tensor except ``prompt`` must be present with a compatible shape
        (``pos_embed`` may have another grid: it is resized); a ``prompt``
        in the checkpoint is loaded and must match (L, P, C).

        Args:
            checkpoint (str): Path or URL.
            prefix (str, optional): Keep the keys under this prefix.
                Defaults to None (``'backbone.'`` for classifiers).
            map_location (str): As in ``torch.load``. Defaults to 'cpu'.
        """
        print_log(
            f'{type(self).__name__}: load from {checkpoint}', logger='current')
        state_dict, _ = load_state_dict_file(checkpoint, map_location)
        state_dict = backbone_state_dict(state_dict, prefix, checkpoint)
        own = self.state_dict()
        namespaces = {name for name, _ in self.named_children()}
        namespaces |= set(self._parameters)
        extra = [k for k in state_dict if k not in own]
        check_state_dict(
            own,
            state_dict,
            f'Checkpoint {checkpoint}',
            keys=[k for k in own if k != 'prompt' or k in state_dict],
            hint=lambda key: self._hint(key, state_dict),
            shape_ok=lambda key, got, want: key == 'pos_embed' and not self.
            _pos_embed_problem(got),
            # Extra tensors inside the backbone's own modules would be
            # dropped silently and change the output (layer scale, ...).
            unexpected=[k for k in extra if k.split('.')[0] in namespaces])
        if extra:
            print_log(
                f'Ignored {len(extra)} checkpoint key(s) that are not '
                f'backbone parameters: {extra[:10]}.',
                logger='current')
        self._loading_pretrained = True
        try:
            self.load_state_dict({k: state_dict[k]
                                  for k in own if k in state_dict},
                                 strict=False)
        finally:
            self._loading_pretrained = False
        if hasattr(self, '_params_init_info'):
            update_init_info(
                self,
                init_info=f'{type(self).__name__}: load from {checkpoint}')

    def frozen_state_dict(self) -> Dict[str, torch.Tensor]:
        """The pretrained, frozen tensors: the state dict but ``prompt``."""
        return {k: v for k, v in self.state_dict().items() if k != 'prompt'}

    def frozen_fingerprint(self) -> str:
        """Fingerprint of :meth:`frozen_state_dict` (64 hex digits)."""
        return tensors_fingerprint(self.frozen_state_dict())

    def _fill_frozen_weights(self, state_dict: dict, prefix: str,
                             *args) -> None:
        """Load-state-dict pre-hook: complete a prompt-only state dict.

        A prompt-only file (see :mod:`lpt_mmpretrain.engine.prompt_checkpoint`)
        holds no frozen weights but the fingerprint of those it was trained
        on (``FINGERPRINT_KEY``). They are taken from this backbone when it
        already holds them, else from its pretrained checkpoint
        (``init_cfg``, or the path the file records), and must have that
        fingerprint. So every loader gives the full model's output or an
        error, never a random backbone.
        """
        if self._loading_pretrained:
            return
        if self.prompt is not None and prefix + 'prompt' not in state_dict:
            raise CheckpointMismatchError(
                f'The checkpoint lacks the shared prompt `{prefix}prompt` '
                'that LPT trains: it is not an LPT checkpoint. A plain '
                'pretrained ViT goes into model.backbone.init_cfg.')
        fingerprint = state_dict.pop(prefix + FINGERPRINT_KEY, None)
        recorded_source = state_dict.pop(prefix + SOURCE_KEY, None)
        frozen = [k for k in self.state_dict() if k != 'prompt']
        present = [k for k in frozen if prefix + k in state_dict]
        if fingerprint is None:
            if present and len(present) < len(frozen):
                missing = [k for k in frozen if prefix + k not in state_dict]
                raise CheckpointMismatchError(
                    f'The checkpoint holds {len(present)} of the backbone\'s '
                    f'{len(frozen)} frozen tensors, e.g. it lacks '
                    f'`{prefix}{missing[0]}`: it is truncated or for another '
                    'architecture.')
            if not present:
                raise CheckpointMismatchError(
                    'The checkpoint holds no backbone weights and no '
                    'fingerprint of a backbone: it is neither a full LPT '
                    'checkpoint nor a prompt-only file written by '
                    'lpt_mmpretrain >= 0.2 (older prompt-only files: '
                    're-export them from the full checkpoint with '
                    'tools/model_converters/extract_prompts.py).')
            return
        if present:
            raise CheckpointMismatchError(
                'The checkpoint is a prompt-only file but also holds backbone '
                f'weights (`{prefix}{present[0]}`): it is corrupt; re-save it.')
        expected = decode_text(fingerprint)
        recorded_source = (decode_text(recorded_source)
                           if recorded_source is not None else None)
        if self.frozen_fingerprint() != expected:
            self._load_fingerprinted(expected, recorded_source)
        for key, value in self.frozen_state_dict().items():
            state_dict[prefix + key] = value

    def _load_fingerprinted(self, expected: str,
                            recorded_source: Optional[str]) -> None:
        source = self.pretrained_checkpoint or recorded_source
        if source is None:
            raise CheckpointMismatchError(
                'A prompt-only checkpoint needs the frozen backbone it was '
                f'trained on (recorded: {recorded_source}), but the model '
                'names no pretrained checkpoint: set model.backbone.init_cfg='
                "dict(type='Pretrained', checkpoint=...).")
        if '://' not in source and not osp.isfile(source):
            raise FileNotFoundError(
                f'A prompt-only checkpoint was trained on the backbone '
                f'{recorded_source} (fingerprint {expected[:16]}...); the '
                f'model\'s pretrained checkpoint {source} does not exist. '
                'Make or download it (see the README), or load the full '
                'checkpoint instead.')
        self.load_pretrained(source)
        actual = self.frozen_fingerprint()
        if actual != expected:
            raise CheckpointMismatchError(
                'The prompt-only checkpoint was trained on another backbone: '
                f'it records {recorded_source} with fingerprint {expected}, '
                f'but {source} has fingerprint {actual}. Use the backbone it '
                'was trained on (model.backbone.init_cfg.checkpoint), or its '
                'full checkpoint.')

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

    def _hint(self, key: str, state_dict: Dict[str, torch.Tensor]) -> str:
        """The likely fix when ``key`` is missing, extra or mis-shaped."""
        if not any(k.startswith('layers.') for k in state_dict):
            return ('Likely fix: this is not a ViT checkpoint (MMPretrain '
                    'VisionTransformer, LPT or timm ViT layout), or init_cfg '
                    'prefix is wrong.')
        parts = key.split('.')
        shape = tuple(state_dict[key].shape) if key in state_dict else None
        if key == 'prompt':
            return (f'Likely fix: the model has prompt_length='
                    f'{self.prompt_length}; set prompt_length and arch to the '
                    'checkpoint\'s.')
        if key == 'pos_embed' and shape is not None:
            return (f'Likely fix: the arch (embed_dims) must match the '
                    f'checkpoint ({self._pos_embed_problem(shape)}); a ViT '
                    'pos_embed is (1, 1 + h * w, C) with a square grid.')
        if key == 'patch_embed.projection.weight' and shape is not None \
                and len(shape) == 4:
            return (f'Likely fix: patch size / in_channels: the checkpoint '
                    f'uses patch_size={shape[2]}, in_channels={shape[1]}.')
        if key not in self.state_dict():
            return ('Likely fix: match the checkpoint\'s architecture options '
                    '(layer_scale_init_value for *gamma*, pre_norm=True for '
                    'pre_norm.*, arch num_layers for extra layers).')
        if parts[0] == 'layers' and shape is None:
            ckpt_layers = _num_layers(state_dict)
            if int(parts[1]) >= ckpt_layers:
                return (f'Likely fix: wrong arch: the checkpoint has '
                        f'{ckpt_layers} layers, the model {self.num_layers}.')
            if key.endswith('attn.qkv.bias'):
                return ('Likely fix: the checkpoint has no qkv bias: set '
                        'qkv_bias=False.')
            if 'gamma' in key:
                return ('Likely fix: the checkpoint has no layer scale: set '
                        'layer_scale_init_value=0.')
        if parts[0] == 'pre_norm' and shape is None:
            return ('Likely fix: the checkpoint has no pre-norm: set '
                    'pre_norm=False.')
        if parts[0] == 'ln1' and shape is None:
            return ('Likely fix: the checkpoint has no final norm on the '
                    'tokens (e.g. a timm average-pooling ViT); LPT needs a '
                    'CLS-token ViT.')
        return ('Likely fix: wrong arch (embed_dims / feedforward_channels / '
                'num_heads) for this checkpoint, or not a ViT checkpoint.')


def _num_layers(state_dict: Dict[str, torch.Tensor]) -> int:
    indices: List[int] = [
        int(k.split('.')[1]) for k in state_dict
        if k.startswith('layers.') and k.split('.')[1].isdigit()
    ]
    return max(indices) + 1 if indices else 0
