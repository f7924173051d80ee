from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import IterBasedTrainLoop
from mmpretrain.registry import HOOKS

from ...datasets.samplers import DualClassBalancedSampler

__all__ = ['DualStreamScheduleHook']


@HOOKS.register_module()
class DualStreamScheduleHook(Hook):
    """Update the epoch-dependent weight of the instance-balanced loss.

    Before every training epoch, calls ``model.head.set_train_progress(epoch,
    max_epochs)`` (``CosineClsHead``, whose instance-balanced loss weight is
    ``max(0, ib_loss_weight * (E - e) / E)``). As it reads the runner's
    epoch, a resumed run gets the right weight. The schedule is per epoch, so
    it needs an epoch-based training loop.

    Before training, it also refuses a ``DualClassBalancedSampler`` whose
    loader batch is not twice the sampler's ``batch_size`` (a config that
    sets both instead of using ``DualStreamBatchSampler``), which would
    otherwise train with fewer iterations per epoch.

    The hook has no arguments; add ``dict(type='DualStreamScheduleHook')`` to
    ``custom_hooks``.
    """

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        """Check that every batch holds one batch of each stream.

        Args:
            runner (Runner): The runner of the training process.
        """
        loader = runner.train_dataloader
        sampler = getattr(loader, 'sampler', None)
        if not isinstance(sampler, DualClassBalancedSampler):
            return  # another sampler, or DualStreamBatchSampler's batches
        if loader.batch_size != 2 * sampler.batch_size:
            raise ValueError(
                f"The train_dataloader's batch_size ({loader.batch_size}) "
                f"must be 2 x the sampler's batch_size ({sampler.batch_size}"
                '): DualClassBalancedSampler yields one batch of each stream '
                'per iteration. Write the batch once: remove '
                'train_dataloader.sampler.batch_size and add '
                "train_dataloader.batch_sampler=dict(type="
                "'DualStreamBatchSampler').")

    def before_train_epoch(self, runner) -> None:
        """Set the training progress of the model's head.

        Args:
            runner (Runner): The runner of the training process.
        """
        if isinstance(getattr(runner, 'train_loop', None), IterBasedTrainLoop):
            raise ValueError(
                'DualStreamScheduleHook follows epochs, but the training loop '
                'is iteration based. Use an epoch-based loop, '
                "train_cfg=dict(type='ResumableEpochBasedTrainLoop', "
                'max_epochs=...) (or by_epoch=True), or remove the hook.')
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        head = getattr(model, 'head', None)
        if not callable(getattr(head, 'set_train_progress', None)):
            return  # a head with one loss over the batch
        epoch, max_epochs = runner.epoch, runner.max_epochs
        head.set_train_progress(epoch, max_epochs)
        print_log(
            f'DualStreamScheduleHook: epoch {epoch}/{max_epochs}, `head` '
            'instance-balanced loss weight = '
            f'{getattr(head, "ib_weight", None)}',
            logger='current')
