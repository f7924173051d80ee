"""The batch sampler that writes LPT's two-stream batch size once."""
import numbers

from mmpretrain.registry import DATA_SAMPLERS
from torch.utils.data import BatchSampler

from .dual_class_balanced_sampler import DualClassBalancedSampler

__all__ = ['DualStreamBatchSampler']


@DATA_SAMPLERS.register_module()
class DualStreamBatchSampler(BatchSampler):
    """Batches of one class-balanced and one instance-balanced batch each.

    ``batch_size`` is the loader's whole batch on one rank; the wrapped
    ``DualClassBalancedSampler`` draws ``batch_size // 2`` images of each
    stream per iteration, so the number is written once, as
    ``train_dataloader.batch_size`` (which ``--auto-scale-lr`` also reads)::

        train_dataloader = dict(
            batch_size=64,  # 32 class-balanced + 32 instance-balanced
            sampler=dict(type='DualClassBalancedSampler', num_samples_cls=4),
            batch_sampler=dict(type='DualStreamBatchSampler'))

    MMEngine's runner builds it with the sampler and the loader's
    ``batch_size``. A sampler given its own ``batch_size`` must agree.

    Args:
        sampler (DualClassBalancedSampler): The sampler of both streams.
        batch_size (int): Images per iteration on this rank, both streams
            together; even.
    """

    def __init__(self, sampler: DualClassBalancedSampler,
                 batch_size: int) -> None:
        if not isinstance(sampler, DualClassBalancedSampler):
            raise TypeError(
                'DualStreamBatchSampler batches the two streams of '
                'DualClassBalancedSampler, got the sampler '
                f"{type(sampler).__name__}. Set train_dataloader.sampler="
                "dict(type='DualClassBalancedSampler'), or remove the "
                'batch_sampler.')
        if (isinstance(batch_size, bool)
                or not isinstance(batch_size, numbers.Integral)
                or batch_size < 2 or batch_size % 2):
            raise ValueError(
                "The loader's batch_size holds one batch of each stream, so "
                f'it must be an even integer >= 2, got {batch_size!r}.')
        per_stream = int(batch_size) // 2
        if sampler.batch_size is None:
            sampler.set_batch_size(per_stream)
        elif sampler.batch_size != per_stream:
            raise ValueError(
                f"The loader's batch_size ({batch_size}) must be 2 x the "
                f"sampler's batch_size ({sampler.batch_size}). Write the "
                "batch once: remove train_dataloader.sampler.batch_size and "
                'keep train_dataloader.batch_size (both streams together).')
        # Every iteration of the sampler fills exactly one batch.
        super().__init__(sampler, int(batch_size), drop_last=True)
