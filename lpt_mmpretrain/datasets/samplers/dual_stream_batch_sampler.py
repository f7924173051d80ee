"""The batch sampler that writes LPT's two-stream batch size once."""
import numbers
from typing import Iterator, List

from mmpretrain.registry import DATA_SAMPLERS
from torch.utils.data import BatchSampler

from ...structures.dual_stream import stream_layout
from .dual_class_balanced_sampler import DualClassBalancedSampler

__all__ = ['DualStreamBatchSampler']


@DATA_SAMPLERS.register_module()
class DualStreamBatchSampler(BatchSampler):
    """Batches of one class-balanced and one instance-balanced batch each.

    Each batch is a list of plain data indices, the class-balanced half
    first (:func:`~lpt_mmpretrain.structures.stream_layout`), so that any
    data set (MMPretrain's ``CustomDataset``, its wrappers, ...) serves as it
    is; the loader's ``collate_fn=dict(type='dual_stream_collate')`` records
    each sample's stream from that layout.

    ``batch_size`` is the loader's whole batch on one rank; the wrapped
    ``DualClassBalancedSampler`` draws ``batch_size // 2`` images of each
    stream per iteration, so the number is written once, as
    ``train_dataloader.batch_size`` (which ``--auto-scale-lr`` also reads)::

        train_dataloader = dict(
            batch_size=64,  # 32 class-balanced + 32 instance-balanced
            sampler=dict(type='DualClassBalancedSampler', num_samples_cls=4),
            batch_sampler=dict(type='DualStreamBatchSampler'),
            collate_fn=dict(type='dual_stream_collate'))

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

    def __iter__(self) -> Iterator[List[int]]:
        layout = stream_layout(self.batch_size)
        for batch in super().__iter__():  # (index, stream) of the sampler
            streams = [stream for _, stream in batch]
            if streams != layout:  # the sampler's order, checked once here
                raise RuntimeError(
                    'DualClassBalancedSampler yielded the streams '
                    f'{streams} for one batch, not the layout {layout}.')
            yield [index for index, _ in batch]
