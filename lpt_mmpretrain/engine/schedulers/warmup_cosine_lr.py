import math
from typing import List, Optional, Union

from mmengine.optim import BaseOptimWrapper
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmpretrain.registry import PARAM_SCHEDULERS
from torch.optim import Optimizer

from ...checks import check_min

__all__ = ['WarmupCosineLR']


@PARAM_SCHEDULERS.register_module()
class WarmupCosineLR(_ParamScheduler):
    r"""Linear warm-up from an absolute lr, then cosine decay, in closed form.

    This is timm's ``CosineLRScheduler`` (``warmup_prefix=False``, one
    cycle), the schedule of the released LPT training script. With ``t`` the
    number of steps since ``begin``, ``W = warmup_steps``, ``T = T_max``,
    ``lr_0`` the optimizer's initial lr and ``lr_w = warmup_start_lr``:

    .. math::
        lr_t = \begin{cases}
            lr_w + t (lr_0 - lr_w) / W, & t < W \\
            \eta_{min} + \frac{1}{2}(lr_0 - \eta_{min})
            (1 + \cos(\pi t / T)), & t \ge W
        \end{cases}

    As in timm with ``warmup_prefix=False``, the cosine counts ``t`` from
    ``begin``, not from the end of the warm-up, so the first step after the
    warm-up is already below ``lr_0``. With the defaults, by epoch and
    ``T = E`` epochs, epoch 0 runs at 1e-6 and epoch ``e >= 1`` at
    ``lr_0 / 2 * (1 + cos(pi * e / E))``.

    Unlike MMEngine's chainable schedulers, the value does not depend on the
    lr the optimizer holds, so ``warmup_start_lr`` stays absolute when
    ``auto_scale_lr`` rescales ``lr_0`` (as in the released code, where the
    lr scales with the batch and the warm-up lr does not). Do not combine it
    with other lr schedulers over the same steps: it overwrites their value.

    Args:
        optimizer (Optimizer | BaseOptimWrapper): The (wrapped) optimizer.
        T_max (int, optional): Period of the cosine in steps: the lr reaches
            ``eta_min`` at ``t = T_max``. Defaults to None, i.e.
            ``end - begin`` (the number of training epochs when ``end`` is
            left to the runner).
        warmup_steps (int): Steps of linear warm-up; 0 disables it.
            Defaults to 1.
        warmup_start_lr (float): Absolute lr at ``t = 0`` of the warm-up.
            Defaults to 1e-6.
        eta_min (float): The lr at ``t = T_max``. Defaults to 0.
        begin (int): Step at which the schedule starts. Defaults to 0.
        end (int): Step at which it stops. Defaults to INF.
        last_step (int): The index of the last step, for resuming without
            a state dict. Defaults to -1.
        by_epoch (bool): Step once per epoch (True) or per iteration.
            Defaults to True.
        verbose (bool): Log every update. Defaults to False.
    """

    def __init__(self,
                 optimizer: Union[Optimizer, BaseOptimWrapper],
                 T_max: Optional[int] = None,
                 warmup_steps: int = 1,
                 warmup_start_lr: float = 1e-6,
                 eta_min: float = 0.,
                 begin: int = 0,
                 end: int = INF,
                 last_step: int = -1,
                 by_epoch: bool = True,
                 verbose: bool = False):
        if T_max is None:
            if end == INF:
                raise ValueError(
                    'WarmupCosineLR needs the cosine period: set `T_max` or '
                    '`end` (the runner sets `end` to max_epochs when the '
                    'config leaves it out).')
            T_max = end - begin
        check_min('T_max', T_max, 1)
        # warmup_steps == T_max (e.g. a 1-epoch smoke run) is warm-up only
        if not (isinstance(warmup_steps, int) and 0 <= warmup_steps <= T_max):
            raise ValueError(
                f'warmup_steps must be an int in [0, T_max={T_max}], got '
                f'{warmup_steps!r}.')
        if warmup_start_lr < 0 or eta_min < 0:
            raise ValueError('warmup_start_lr and eta_min must be >= 0, got '
                             f'{warmup_start_lr} and {eta_min}.')
        self.T_max = T_max
        self.warmup_steps = warmup_steps
        self.warmup_start_lr = warmup_start_lr
        self.eta_min = eta_min
        super().__init__(
            optimizer,
            param_name='lr',
            begin=begin,
            end=end,
            last_step=last_step,
            by_epoch=by_epoch,
            verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls,
                              *args,
                              T_max: Optional[int] = None,
                              warmup_steps: int = 1,
                              begin: int = 0,
                              end: int = INF,
                              by_epoch: bool = True,
                              epoch_length: Optional[int] = None,
                              **kwargs) -> 'WarmupCosineLR':
        """Build the same schedule in iterations from an epoch-based config
        (``convert_to_iter_based=True``): every length is multiplied by
        ``epoch_length``."""
        if not by_epoch or not epoch_length or epoch_length <= 0:
            raise ValueError(
                'convert_to_iter_based needs by_epoch=True and a positive '
                f'epoch_length, got by_epoch={by_epoch}, '
                f'epoch_length={epoch_length}.')
        if T_max is not None:
            T_max = T_max * epoch_length
        elif end != INF:
            T_max = (end - begin) * epoch_length
        return cls(
            *args,
            T_max=T_max,
            warmup_steps=warmup_steps * epoch_length,
            begin=begin * epoch_length,
            end=end if end == INF else end * epoch_length,
            by_epoch=False,
            **kwargs)

    def lr_at(self, step: int, base_lr: float) -> float:
        """The lr ``step`` steps after ``begin`` for an initial lr
        ``base_lr``."""
        if step < self.warmup_steps:
            return self.warmup_start_lr + step * (
                base_lr - self.warmup_start_lr) / self.warmup_steps
        return self.eta_min + 0.5 * (base_lr - self.eta_min) * (
            1 + math.cos(math.pi * step / self.T_max))

    def _get_value(self) -> List[float]:
        return [self.lr_at(self.last_step, base) for base in self.base_values]
