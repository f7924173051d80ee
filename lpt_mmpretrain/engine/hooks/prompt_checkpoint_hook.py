import os.path as osp
from typing import Optional

from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ..prompt_checkpoint import save_prompt_checkpoint

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
    :mod:`lpt_mmpretrain.engine.prompt_checkpoint`) plus the model config,
    class names and training class counts. For ViT-B that is a few MB
    instead of the 330 MB model. ``tools/test.py`` accepts either file.

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
        if last is None or last == self._written:
            return
        filename = osp.splitext(last)[0] + self.suffix + '.pth'
        metainfo = runner.train_dataloader.dataset.metainfo
        meta = dict(model=_plain(runner.cfg.model),
                    classes=_plain(metainfo.get('classes')),
                    cls_num_list=_plain(metainfo.get('cls_num_list')),
                    full_checkpoint=osp.basename(last),
                    epoch=runner.epoch,
                    iter=runner.iter)
        save_prompt_checkpoint(runner.model, filename, meta=meta)
        self._written = last
        runner.logger.info(f'Prompt-only checkpoint written to {filename}.')

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
