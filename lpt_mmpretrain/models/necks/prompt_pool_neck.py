from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.registry import MODELS

from ...checks import check_min

__all__ = ['PromptPoolNeck']


@MODELS.register_module()
class PromptPoolNeck(BaseModule):
    """The group-specific prompt pool of LPT (phase 2).

    The pool holds ``pool_size`` entries, each a set of ``prompt_length``
    prompt tokens for every one of the last ``num_layers`` ViT blocks, and one
    key per entry. Given a query (the CLS feature of the phase-1 model), the
    ``top_k`` keys most similar to it by cosine are selected and their entries
    are averaged into one set of group prompts per sample.

    The neck also returns the matching term of each sample, the sum of the
    cosine similarities of its selected keys; the classifier turns it into the
    loss ``-match_loss_weight * mean(match)`` so that keys move toward the
    queries that select them.

    ``embed_dims`` and ``num_layers`` may be left to ``None``:
    :class:`LPTClassifier` fills them from its backbone (and checks them
    against the backbone when given).

    Args:
        pool_size (int): Number of entries in the pool. Defaults to 20.
        prompt_length (int): Prompt tokens per block in each entry.
            Defaults to 10.
        top_k (int): Number of entries selected (and averaged) per sample.
            Defaults to 2.
        embed_dims (int, optional): Width of the prompts and keys; must equal
            the backbone's. Defaults to None (taken from the backbone).
        num_layers (int, optional): Number of blocks that receive group
            prompts, ``L - share_blocks``. Defaults to None (taken from the
            backbone and ``share_blocks``).
        init_std (float): Std of the truncated-normal init of prompts and
            keys. Defaults to 0.02.
        init_cfg (dict, optional): Initialization config dict.
            Defaults to None.
    """

    def __init__(self,
                 pool_size: int = 20,
                 prompt_length: int = 10,
                 top_k: int = 2,
                 embed_dims: Optional[int] = None,
                 num_layers: Optional[int] = None,
                 init_std: float = 0.02,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        check_min('pool_size', pool_size, 1)
        check_min('prompt_length', prompt_length, 1)
        if not 1 <= top_k <= pool_size:
            raise ValueError(
                f'top_k={top_k} must be between 1 and pool_size={pool_size}: '
                'a sample cannot select more entries than the pool holds. '
                'Lower `top_k` or raise `pool_size` in the neck config.')
        self.pool_size = pool_size
        self.prompt_length = prompt_length
        self.top_k = top_k
        self.init_std = init_std
        self.embed_dims = None
        self.num_layers = None
        if embed_dims is not None and num_layers is not None:
            self.build_pool(embed_dims, num_layers)
        elif (embed_dims is None) != (num_layers is None):
            raise ValueError(
                'Give both `embed_dims` and `num_layers` or neither (then '
                'LPTClassifier takes them from the backbone).')

    @property
    def is_built(self) -> bool:
        return self.embed_dims is not None

    def build_pool(self, embed_dims: int, num_layers: int) -> None:
        """Create the pool and keys for a backbone of this width and depth.

        Args:
            embed_dims (int): Width of the backbone tokens.
            num_layers (int): Blocks that receive group prompts.
        """
        if self.is_built:
            if (embed_dims, num_layers) != (self.embed_dims, self.num_layers):
                raise ValueError(
                    f'PromptPoolNeck was configured with embed_dims='
                    f'{self.embed_dims}, num_layers={self.num_layers}, but '
                    f'the backbone needs embed_dims={embed_dims}, '
                    f'num_layers={num_layers} (L - share_blocks). Remove '
                    'them from the neck config to take them from the '
                    'backbone.')
            return
        if num_layers < 1:
            raise ValueError(
                f'The pool needs at least one block, got num_layers='
                f'{num_layers}.')
        self.embed_dims = embed_dims
        self.num_layers = num_layers
        # (pool_size, L - share_blocks, P, C)
        self.prompt = nn.Parameter(
            torch.empty(self.pool_size, num_layers, self.prompt_length,
                        embed_dims))
        # (pool_size, C)
        self.key = nn.Parameter(torch.empty(self.pool_size, embed_dims))
        self._reset_pool()

    def _reset_pool(self) -> None:
        trunc_normal_(self.prompt, std=self.init_std)
        trunc_normal_(self.key, std=self.init_std)

    def init_weights(self) -> None:
        super().init_weights()
        if self.is_built and self.init_cfg is None:
            self._reset_pool()

    def select(self, query: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Cosine similarity of each query to the keys, and the top-k.

        Args:
            query (Tensor): (B, C) queries.

        Returns:
            tuple[Tensor, Tensor]: (B, top_k) similarities of the selected
            keys (in the autograd graph of the keys) and their (B, top_k)
            indices.
        """
        # (B, pool_size)
        sim = F.normalize(query, dim=-1) @ F.normalize(self.key, dim=-1).t()
        return sim.topk(self.top_k, dim=-1)

    def forward(self,
                query: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Select and average the group prompts for each query.

        Args:
            query (Tensor): (B, C) queries; no gradient flows into them.

        Returns:
            tuple[Tensor, Tensor]: the group prompts (B, num_layers, P, C)
            and the matching term (B,), the sum of the cosine similarities
            of the selected keys.
        """
        if not self.is_built:
            raise RuntimeError(
                'PromptPoolNeck has no pool yet: call build_pool() or give '
                'embed_dims and num_layers (LPTClassifier does it).')
        if query.dim() != 2 or query.size(1) != self.embed_dims:
            raise ValueError(
                f'Expected queries of shape (B, {self.embed_dims}), got '
                f'{tuple(query.shape)}.')
        sim, idx = self.select(query.detach())
        # (B, top_k, num_layers, P, C) -> (B, num_layers, P, C)
        prompts = self.prompt[idx].mean(dim=1)
        return prompts, sim.sum(dim=1)
