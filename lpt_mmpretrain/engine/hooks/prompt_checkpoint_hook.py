import os
import os.path as osp
import re
from typing import Optional

import torch
from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ...checkpoints import prompt_only_path, save_prompt_checkpoint

__all__ = ['PromptCheckpointHook']

DATA_BATCH = Optional[dict]


def _plain(obj):
    """Turn config dicts and tuples into plain Python containers."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


@HOOKS.register_module()
class PromptCheckpointHook(Hook):
    """Write a prompt-only checkpoint next to every full checkpoint.

    After MMEngine's ``CheckpointHook`` saves ``epoch_N.pth``, this hook
    writes ``epoch_N{suffix}.pth`` holding only what training changed (shared
    prompt, prompt pool and keys, head; see
    :mod:`lpt_mmpretrain.checkpoints.prompt_only`), the fingerprint and path
    of the frozen backbone, the model config, class names, training class
    counts, and the full checkpoint's epoch and iteration. For ViT-B that is
    a few MB instead of the 330 MB model. Every loader that takes the full
    file takes this one. Prompt-only files whose full checkpoint
    ``CheckpointHook`` removed (``max_keep_ckpts``) are removed too.

    Args:
        suffix (str): Appended to the full checkpoint's name.
            Defaults to '_prompts'.
    """

    # After CheckpointHook (VERY_LOW), which publishes `last_ckpt`.
    priority = 'LOWEST'

    def __init__(self, suffix: str = '_prompts') -> None:
        self.suffix = suffix
        self._written = None

    def before_train(self, runner) -> None:
        # A resumed run starts with the checkpoint it resumed from; its
        # prompt file already exists and the model is about to change.
        self._written = runner.message_hub.get_info('last_ckpt')

    @master_only
    def _maybe_save(self, runner) -> None:
        last = runner.message_hub.get_info('last_ckpt')
        if last is None or last == self._written or not osp.isfile(last):
            return
        filename = prompt_only_path(last, self.suffix)
        # The full file's own epoch / iteration (memory-mapped: cheap).
        full_meta = torch.load(
            last, map_location='cpu', mmap=True,
            weights_only=True).get('meta', {})
        metainfo = runner.train_dataloader.dataset.metainfo
        meta = dict(
            model=_plain(runner.cfg.model),
            classes=_plain(metainfo.get('classes')),
            cls_num_list=_plain(metainfo.get('cls_num_list')),
            full_checkpoint=osp.basename(last),
            epoch=full_meta.get('epoch', runner.epoch),
            iter=full_meta.get('iter', runner.iter))
        save_prompt_checkpoint(runner.model, filename, meta=meta)
        self._written = last
        self._remove_orphans(osp.dirname(last))
        runner.logger.info(f'Prompt-only checkpoint written to {filename}.')

    def _remove_orphans(self, folder: str) -> None:
        pattern = re.compile(r'^(?:epoch|iter)_\d+' + re.escape(self.suffix) +
                             r'\.pth$')
        for name in os.listdir(folder):
            full = name[:-len(self.suffix + '.pth')] + '.pth'
            if pattern.match(name) and not osp.exists(osp.join(folder, full)):
                os.remove(osp.join(folder, name))

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        self._maybe_save(runner)

    def after_train_epoch(self, runner) -> None:
        self._maybe_save(runner)

    def after_train(self, runner) -> None:
        self._maybe_save(runner)
