from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import IterBasedTrainLoop
from mmpretrain.registry import HOOKS

__all__ = ['DualStreamScheduleHook']


@HOOKS.register_module()
class DualStreamScheduleHook(Hook):
    """Update the epoch-dependent weight of the instance-balanced loss.

    Before every training epoch, calls ``set_train_progress(epoch,
    max_epochs)`` on every module of the model that has that method (e.g.
    ``CosineClsHead``, whose instance-balanced loss weight is
    ``max(0, ib_loss_weight * (E - e) / E)``). As it reads the runner's
    epoch, a resumed run gets the right weight. The schedule is per epoch, so
    it needs an epoch-based training loop.

    The hook has no arguments; add ``dict(type='DualStreamScheduleHook')`` to
    ``custom_hooks``.
    """

    priority = 'NORMAL'

    def before_train_epoch(self, runner) -> None:
        """Set the training progress of every module that takes it.

        Args:
            runner (Runner): The runner of the training process.
        """
        if isinstance(getattr(runner, 'train_loop', None), IterBasedTrainLoop):
            raise ValueError(
                'DualStreamScheduleHook follows epochs, but the training loop '
                'is iteration based. Use train_cfg=dict(by_epoch=True, '
                'max_epochs=...) or remove the hook.')
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        epoch, max_epochs = runner.epoch, runner.max_epochs
        for name, module in model.named_modules():
            if not callable(getattr(module, 'set_train_progress', None)):
                continue
            module.set_train_progress(epoch, max_epochs)
            weight = getattr(module, 'ib_weight', None)
            print_log(
                f'DualStreamScheduleHook: epoch {epoch}/{max_epochs}, '
                f'`{name or type(module).__name__}` instance-balanced loss '
                f'weight = {weight}',
                logger='current')
