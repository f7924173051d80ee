"""Many LPT tasks as stacked tensors, gathered per sample by task index.

What an LPT task adds to the frozen ViT (shared prompt, prompt pool and keys,
head) is held for all tasks at once in tensors padded to the largest task,
so that one forward pass serves a batch mixing tasks with no Python loop
over the tasks: each sample gathers its own task's row by task index, and
the padding is masked (attention keys, pool entries, classes). The batched
forward pass is :class:`~lpt_mmpretrain.apis.multi_task_model.MultiTaskModel`.
See ``docs/deployment.md``.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.heads import LinearClsHead

from ..models.heads.cosine_cls_head import CosineClsHead

__all__ = ['TaskTensors', 'task_tensors', 'TaskStack']


@dataclass
class TaskTensors:
    """What one task adds to the frozen backbone (unpadded).

    Args:
        prompt (torch.Tensor): Shared prompt (L, P, C); P may be 0.
        head_weight (torch.Tensor): Class weights (num_classes, C),
            L2-normalised for a cosine head.
        head_bias (torch.Tensor): (num_classes, ) (zeros without a bias).
        cosine (bool): Normalise the feature (cosine head).
        scale (float): Logit scale before the softmax (``pred_scale``).
        share_blocks (int, optional): Phase 2: blocks without group prompts.
            None for phase 1.
        pool (torch.Tensor, optional): Phase 2: (pool_size, L - k, P2, C).
        keys (torch.Tensor, optional): Phase 2: (pool_size, C), normalised.
        top_k (int): Phase 2: entries selected per sample. Defaults to 0.
    """
    prompt: torch.Tensor
    head_weight: torch.Tensor
    head_bias: torch.Tensor
    cosine: bool
    scale: float
    share_blocks: Optional[int] = None
    pool: Optional[torch.Tensor] = None
    keys: Optional[torch.Tensor] = None
    top_k: int = 0


def task_tensors(model: nn.Module) -> TaskTensors:
    """The tensors of a built, loaded LPT model (phase 1 or 2).

    Args:
        model (nn.Module): An ``LPTClassifier`` (or an ``ImageClassifier`` on
            an ``LPTVisionTransformer``) with a :class:`CosineClsHead` or
            MMPretrain's ``LinearClsHead``.
    """
    bb, head = model.backbone, model.head
    with torch.no_grad():
        prompt = (
            bb.prompt.detach() if bb.prompt is not None else
            bb.pos_embed.new_zeros(bb.num_layers, 0, bb.embed_dims))
        if isinstance(head, CosineClsHead):
            weight = F.normalize(head.fc.weight.detach(), dim=1)
            bias = weight.new_zeros(weight.shape[0])
            cosine, scale = True, float(head.pred_scale)
        elif isinstance(head, LinearClsHead):
            weight = head.fc.weight.detach()
            bias = (
                head.fc.bias.detach() if head.fc.bias is not None else
                weight.new_zeros(weight.shape[0]))
            cosine, scale = False, 1.
        else:
            raise TypeError(
                f'The task\'s head is a {type(head).__name__}: the stacked '
                'forward serves CosineClsHead and LinearClsHead heads.')
        tensors = TaskTensors(prompt, weight, bias, cosine, scale)
        if getattr(model, 'with_neck', False):
            neck = model.neck
            tensors.share_blocks = int(model.share_blocks)
            tensors.pool = neck.prompt.detach()
            tensors.keys = F.normalize(neck.key.detach(), dim=-1)
            tensors.top_k = int(neck.top_k)
    return tensors


def _padded(tensors: Sequence[torch.Tensor],
            front: Sequence[bool] = ()) -> torch.Tensor:
    """Stack tensors of one rank, zero-padded to the largest in each dim.

    ``front[d]`` pads dimension d at its start (aligns the ends).
    """
    shape = [max(t.shape[d] for t in tensors) for d in range(tensors[0].dim())]
    rows = []
    for t in tensors:
        pad = []
        for d in reversed(range(t.dim())):
            missing = shape[d] - t.shape[d]
            at_front = d < len(front) and front[d]
            pad += [missing, 0] if at_front else [0, missing]
        rows.append(F.pad(t, pad))
    return torch.stack(rows)


class TaskStack(nn.Module):
    """Every task's tensors, stacked and padded, gathered by task index.

    Buffers (T tasks): ``prompt`` (T, L, P, C) with ``prompt_len`` (T,);
    ``pool`` (T, K, G, P2, C) with ``G = L - min(share_blocks)``, each task's
    pool aligned to the last blocks, ``keys`` (T, K, C), ``pool_size``,
    ``top_k``, ``group_len``, ``share_blocks`` (L for phase-1 tasks) (T,);
    ``head_weight`` (T, M, C), ``head_bias`` (T, M), ``cosine``, ``scale``,
    ``num_classes`` (T,). Rebuilt by :meth:`set_tasks`; afterwards each
    :class:`TaskTensors` holds views into the stack, so the per-task
    tensors are kept once.

    Args:
        num_layers (int): The backbone's L.
        embed_dims (int): The backbone's C.
    """

    def __init__(self, num_layers: int, embed_dims: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.embed_dims = embed_dims
        self.num_tasks = 0

    def set_tasks(self, tasks: List[TaskTensors]) -> None:
        """Rebuild the stacked buffers from ``tasks`` (in task-index order)."""
        L, C = self.num_layers, self.embed_dims
        self.num_tasks = len(tasks)
        if not tasks:
            return
        device = tasks[0].prompt.device

        def longs(values):
            return torch.tensor(values, dtype=torch.long, device=device)

        buffers = dict(
            prompt=_padded([t.prompt for t in tasks]),
            prompt_len=longs([t.prompt.shape[1] for t in tasks]),
            head_weight=_padded([t.head_weight for t in tasks]),
            head_bias=_padded([t.head_bias for t in tasks]),
            num_classes=longs([t.head_weight.shape[0] for t in tasks]),
            cosine=torch.tensor([t.cosine for t in tasks], device=device),
            scale=torch.tensor([t.scale for t in tasks], device=device),
            share_blocks=longs([
                L if t.share_blocks is None else t.share_blocks for t in tasks
            ]))
        phase2 = [t for t in tasks if t.pool is not None]
        empty_pool = torch.zeros(1, 1, 0, C, device=device)
        empty_keys = torch.zeros(1, C, device=device)
        buffers.update(
            pool=_padded(
                [t.pool if t.pool is not None else empty_pool for t in tasks],
                front=(False, True)),
            keys=_padded(
                [t.keys if t.keys is not None else empty_keys for t in tasks]),
            pool_size=longs(
                [0 if t.pool is None else t.pool.shape[0] for t in tasks]),
            top_k=longs([t.top_k for t in tasks]),
            group_len=longs(
                [0 if t.pool is None else t.pool.shape[2] for t in tasks]))
        self.max_top_k = max([t.top_k for t in phase2], default=0)
        for name, value in buffers.items():
            self.register_buffer(name, value, persistent=False)
        # The per-task tensors become views into the stack.
        for i, t in enumerate(tasks):
            t.prompt = self.prompt[i, :, :t.prompt.shape[1]]
            m = t.head_weight.shape[0]
            t.head_weight, t.head_bias = (self.head_weight[i, :m],
                                          self.head_bias[i, :m])
            if t.pool is not None:
                k, g, p2 = t.pool.shape[:3]
                t.pool = self.pool[i, :k, self.pool.shape[2] - g:, :p2]
                t.keys = self.keys[i, :k]

    @property
    def group_start(self) -> int:
        """The first block with a group prompt in the stack (``L - G``)."""
        return self.num_layers - self.pool.shape[2]

    def shared_prompts(
            self, task_idx: torch.Tensor, start: int,
            end: int) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Each sample's shared prompt of blocks ``start .. end - 1``.

        Returns:
            tuple: prompts (B, end - start, P, C) and their key mask
            (B, end - start, P), or (None, None) when no task has a prompt.
        """
        P = self.prompt.shape[2]
        if P == 0:
            return None, None
        prompts = self.prompt[task_idx, start:end]  # (B, n, P, C)
        # (B, P) -> (B, n, P)
        mask = (
            torch.arange(P, device=task_idx.device) < self.prompt_len[task_idx,
                                                                      None])
        return prompts, mask[:, None].expand(-1, end - start, -1)

    def group_prompts(self, query: torch.Tensor, task_idx: torch.Tensor,
                      start: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Each phase-2 sample's top-k average of its task's pool entries.

        Args:
            query (torch.Tensor): (n, C) queries (phase-1 features).
            task_idx (torch.Tensor): (n, ) their (phase-2) tasks.
            start (int): First block of the feature pass, at least
                :attr:`group_start`.

        Returns:
            tuple: group prompts (n, L - start, P2, C) and their key mask
            (n, L - start, P2): False for padding and for blocks before the
            sample's own ``share_blocks``.
        """
        keys = self.keys[task_idx]  # (n, K, C)
        sim = torch.bmm(keys, F.normalize(query, dim=-1)[:, :, None])[..., 0]
        K = keys.shape[1]
        entries = torch.arange(K, device=query.device)
        sim = sim.masked_fill(entries >= self.pool_size[task_idx, None],
                              float('-inf'))  # (n, K)
        _, idx = sim.topk(self.max_top_k, dim=-1)  # (n, k_max)
        taken = (entries[:self.max_top_k] < self.top_k[task_idx,
                                                       None]).to(query.dtype)
        offset = start - self.group_start
        # Rows of the (T * K, G, P2, C) pool: (n, k_max, G, P2, C), then
        # from block `start` on.
        entries_of = (task_idx[:, None] * K + idx).flatten()
        chosen = self.pool.flatten(0, 1).index_select(0, entries_of)
        chosen = chosen.view(idx.shape + chosen.shape[1:])[:, :, offset:]
        # Phase-1 rows (in the static pass) take nothing: 0, not 0 / 0.
        taken = taken / self.top_k[task_idx, None].clamp(min=1)
        # The mean of the taken entries as one batched matmul:
        # (n, 1, k_max) @ (n, k_max, (L - start) * P2 * C)
        prompts = torch.bmm(taken[:, None],
                            chosen.flatten(2)).view(chosen.shape[:1] +
                                                    chosen.shape[2:])
        blocks = torch.arange(start, self.num_layers, device=query.device)
        tokens = torch.arange(self.pool.shape[3], device=query.device)
        # (n, L - start, 1) & (n, 1, P2)
        mask = (
            (blocks[None, :, None] >= self.share_blocks[task_idx, None, None])
            & (tokens[None, None, :] < self.group_len[task_idx, None, None]))
        return prompts, mask

    def scores(self, feats: torch.Tensor,
               task_idx: torch.Tensor) -> torch.Tensor:
        """Each sample's scores under its task's head, as ``predict`` gives.

        Args:
            feats (torch.Tensor): (B, C) features.
            task_idx (torch.Tensor): (B, ) tasks.

        Returns:
            torch.Tensor: (B, M) softmax scores; 0 beyond a task's classes.
        """
        cosine = self.cosine[task_idx, None]
        x = torch.where(cosine, F.normalize(feats, dim=1), feats)
        # One batched matmul on the gathered class weights: (B, M)
        logits = torch.bmm(self.head_weight[task_idx], x[:, :, None])[..., 0]
        logits = (logits + self.head_bias[task_idx]) * self.scale[task_idx,
                                                                  None]
        classes = torch.arange(logits.shape[1], device=feats.device)
        logits = logits.masked_fill(
            classes >= self.num_classes[task_idx, None], float('-inf'))
        return F.softmax(logits, dim=1)
