"""The collate function of LPT's dual-stream training batches."""
from typing import Callable, Sequence, Union

from mmengine.registry import FUNCTIONS

from ..structures.dual_stream import STREAM_KEY, stream_layout

__all__ = ['dual_stream_collate']


@FUNCTIONS.register_module()
def dual_stream_collate(data_batch: Sequence[dict],
                        collate: Union[str, Callable] = 'pseudo_collate'):
    """Record each sample's sampling stream, then collate the batch.

    ``DualStreamBatchSampler`` yields plain indices, the class-balanced half
    of the batch first (:func:`~lpt_mmpretrain.structures.stream_layout`);
    this writes that stream into every sample's ``data_samples`` metainfo
    (``sampling_stream``), where the model reads it. The data set needs
    nothing from LPT::

        train_dataloader = dict(
            batch_size=64,
            dataset=dict(type='CustomDataset', data_root='data/mine'),
            sampler=dict(type='DualClassBalancedSampler'),
            batch_sampler=dict(type='DualStreamBatchSampler'),
            collate_fn=dict(type='dual_stream_collate'))

    Args:
        data_batch (Sequence[dict]): The pipeline outputs of one batch of
            ``DualStreamBatchSampler``, in its order.
        collate (str | Callable): The collate function applied afterwards, a
            name of MMEngine's ``FUNCTIONS`` registry. Defaults to
            'pseudo_collate' (MMEngine's default).
    """
    for stream, data in zip(stream_layout(len(data_batch)), data_batch):
        samples = data.get('data_samples') if isinstance(data, dict) else None
        if samples is None:
            raise KeyError(
                'dual_stream_collate records the sampling stream in each '
                "sample's `data_samples`, but the pipeline output has none. "
                "End the training pipeline with dict(type='PackInputs').")
        samples.set_metainfo({STREAM_KEY: stream})
    if isinstance(collate, str):
        name, collate = collate, FUNCTIONS.get(collate) or None
        if collate is None:
            raise KeyError(
                f'dual_stream_collate: collate={name!r} is not a function of '
                "MMEngine's FUNCTIONS registry; use e.g. 'pseudo_collate' or "
                "'default_collate'.")
    return collate(data_batch)
