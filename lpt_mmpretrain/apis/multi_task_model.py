"""The batched forward pass of many LPT tasks on one frozen backbone.

See :mod:`lpt_mmpretrain.apis.task_stack` for the stacked task tensors and
``docs/deployment.md``.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn

from .task_stack import TaskStack

__all__ = ['MultiTaskModel']


class MultiTaskModel(nn.Module):
    """One frozen backbone and a :class:`TaskStack`: images -> scores.

    For a batch whose sample j belongs to task ``task_idx[j]``:

    1. all samples run the L blocks with their task's shared prompt (padded
       and masked to the longest): the phase-1 feature, or the phase-2
       query; the tokens before each ``share_blocks`` value of the batch's
       phase-2 samples are kept;
    2. the phase-2 samples select their top-k group prompts and run blocks
       ``share_blocks .. L - 1`` again from the kept tokens with shared and
       group prompts, one pass per ``share_blocks`` value (not per task:
       samples of any tasks with that value go together);
    3. every sample's head: :meth:`TaskStack.scores`.

    Each sample's scores equal its own model's (``LPTClassifier.predict``)
    to float tolerance. Blocks whose keys need no mask (a batch of one
    prompt length) run as MMPretrain's layers.

    Args:
        backbone (nn.Module): An :class:`LPTVisionTransformer` without its
            own prompt (``prompt_length=0``), frozen weights loaded.
        stack (TaskStack): The tasks.
        static (bool): Trace-friendly mode for export: every sample takes
            one phase-2 pass from the stack's first group block, its group
            prompts masked before its own ``share_blocks`` (where the pass
            equals its query pass), phase-1 samples keeping their query;
            no shape depends on the data. Defaults to False.
    """

    def __init__(self,
                 backbone: nn.Module,
                 stack: TaskStack,
                 static: bool = False) -> None:
        super().__init__()
        if getattr(backbone, 'prompt', None) is not None:
            raise ValueError('MultiTaskModel needs a backbone without its own '
                             'prompt (the tasks bring theirs).')
        self.backbone = backbone
        self.stack = stack
        self.static = static

    def _blocks(self,
                tokens: torch.Tensor,
                task_idx: torch.Tensor,
                start: int,
                end: int,
                group: Optional[Tuple[torch.Tensor,
                                      torch.Tensor]] = None) -> torch.Tensor:
        """Blocks ``start .. end - 1`` with shared (and ``group``: group
        prompts and their key mask) prompts."""
        prompts, mask = self.stack.shared_prompts(task_idx, start, end)
        if group is not None:
            group_prompts, group_mask = group
            prompts = (
                group_prompts if prompts is None else torch.cat(
                    [prompts, group_prompts], dim=2))
            mask = (
                group_mask if mask is None else torch.cat([mask, group_mask],
                                                          dim=2))
        return self.backbone.forward_blocks(
            tokens, start, end, extra_prompts=prompts, key_mask=mask)

    def extract_feat(self, inputs: torch.Tensor,
                     task_idx: torch.Tensor) -> torch.Tensor:
        """The (B, C) feature of each sample under its own task's model."""
        bb, stack = self.backbone, self.stack
        L = bb.num_layers
        if stack.num_tasks == 0:
            raise RuntimeError('No task is loaded: add_task() first.')
        tokens = bb.embed(inputs)  # (B, N, C)
        share = stack.share_blocks[task_idx]  # (B,), L for phase 1
        if self.static:  # one phase-2 pass for all, from the first group block
            starts = [stack.group_start] if stack.max_top_k else []
        else:  # one phase-2 pass per share_blocks value in the batch
            starts = sorted(set(share[share < L].tolist()))
        # 1. all samples, shared prompts: keep the tokens before each start.
        kept, done = {}, 0
        for end in starts + [L]:
            tokens = self._blocks(tokens, task_idx, done, end)
            kept[end], done = tokens, end
        query = bb.forward_final(tokens)  # phase-1 feature or query
        feats = query
        # 2. phase-2 samples again from their start with group prompts.
        for start in starts:
            if self.static:
                rows = None  # all; masked before each sample's own start
                group = stack.group_prompts(query, task_idx, start)
                out = self._blocks(kept[start], task_idx, start, L, group)
                return torch.where((share < L)[:, None], bb.forward_final(out),
                                   query)
            rows = (share == start).nonzero()[:, 0]
            group = stack.group_prompts(query[rows], task_idx[rows], start)
            out = self._blocks(kept[start][rows], task_idx[rows], start, L,
                               group)
            feats = feats.index_copy(0, rows, bb.forward_final(out))
        return feats

    def forward(self, inputs: torch.Tensor,
                task_idx: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) and (B,) int64 task indices -> (B, M) scores
        (0 beyond a task's ``num_classes``)."""
        return self.stack.scores(self.extract_feat(inputs, task_idx), task_idx)
