"""The two sampling streams of LPT: their ids and how a batch is split.

``DualClassBalancedSampler`` draws, for every iteration, one class-balanced
batch and one instance-balanced batch. Every sample records its stream in its
``DataSample`` metainfo under :data:`STREAM_KEY`; the model tells the streams
apart by that field alone, never by the position in the batch. The data sets
and the sampler write the field, the model reads it: this module sits between
them, like ``mmpretrain.structures``.

A training step reads the field once (:func:`get_streams`, a (B,) tensor) and
splits the batch once (:func:`split_streams`).
"""
import numbers
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

__all__ = [
    'STREAM_CB', 'STREAM_IB', 'STREAM_KEY', 'get_streams', 'split_streams'
]

#: Stream id of a class-balanced sample.
STREAM_CB = 0
#: Stream id of an instance-balanced sample.
STREAM_IB = 1
#: Metainfo field of a ``DataSample`` that holds its stream id.
STREAM_KEY = 'sampling_stream'

_STREAM_NAMES = {STREAM_CB: 'class-balanced', STREAM_IB: 'instance-balanced'}
_BATCH_FIX = ("set train_dataloader.batch_sampler=dict(type="
              "'DualStreamBatchSampler'), which gives the sampler half the "
              "loader's batch_size, and leave the sampler's batch_size unset.")


def _stream_value(sample, index: int) -> Optional[int]:
    """The stream id of one data sample, or None if it has none."""
    if sample is None or STREAM_KEY not in sample:
        return None
    value = sample.get(STREAM_KEY)
    if isinstance(value, (torch.Tensor, np.ndarray)):
        numel = value.numel() if isinstance(value, torch.Tensor) \
            else value.size
        if numel != 1:
            raise ValueError(
                f'Data sample {index} has a `{STREAM_KEY}` with {numel} '
                f'elements; expected one stream id ({STREAM_CB} or '
                f'{STREAM_IB}).')
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or value not in _STREAM_NAMES):
        raise ValueError(
            f'Data sample {index} has `{STREAM_KEY}={value!r}`; the stream '
            f'id must be {STREAM_CB} (class-balanced) or {STREAM_IB} '
            '(instance-balanced), as written by DualClassBalancedSampler.')
    return int(value)


def get_streams(data_samples: Optional[Sequence],
                device: Union[str, torch.device,
                              None] = None) -> Optional[torch.Tensor]:
    """Read the sampling stream of every sample of a batch.

    Args:
        data_samples (Sequence[DataSample], optional): The batch's data
            samples. None (or samples that are all None) means no streams.
        device (str | torch.device, optional): Device of the returned tensor.
            Defaults to None (CPU).

    Returns:
        torch.Tensor | None: A (B,) long tensor of stream ids
        (:data:`STREAM_CB` or :data:`STREAM_IB`), or None when no sample
        carries the :data:`STREAM_KEY` field.

    Raises:
        ValueError: If only some samples carry the field, or a stream id is
            not 0 or 1.
    """
    if data_samples is None:
        return None
    values = [_stream_value(s, i) for i, s in enumerate(data_samples)]
    missing = [i for i, v in enumerate(values) if v is None]
    if len(missing) == len(values):
        return None
    if missing:
        raise ValueError(
            f'{len(missing)} of {len(values)} data samples (indices '
            f'{missing[:10]}{"..." if len(missing) > 10 else ""}) carry no '
            f'`{STREAM_KEY}` while the others do. A batch must come entirely '
            'from DualClassBalancedSampler or entirely from a plain sampler; '
            'do not mix samplers or data sets with and without streams.')
    return torch.tensor(values, dtype=torch.long, device=device)


def split_streams(
    streams: Union[torch.Tensor, Sequence, None],
    device: Union[str, torch.device, None] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Masks of the class-balanced and instance-balanced samples of a batch.

    Args:
        streams (torch.Tensor | Sequence[DataSample] | None): The (B,) stream
            ids of :func:`get_streams`, or the batch's data samples (read
            with :func:`get_streams`). None means a batch without streams.
        device (str | torch.device, optional): Device of the returned masks.
            Defaults to None (the device of ``streams``, CPU for samples).

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``(cb_mask, ib_mask)``, two (B,)
        bool tensors.

    Raises:
        ValueError: If the batch carries no streams, one stream is empty, or
            the two streams have different sizes.
    """
    if not isinstance(streams, torch.Tensor):
        streams = get_streams(streams)
    if streams is None:
        raise ValueError(
            f'The batch carries no `{STREAM_KEY}`, so it cannot be split into '
            'a class-balanced and an instance-balanced half. Use '
            'DualClassBalancedSampler as the train_dataloader sampler.')
    streams = streams.to(device) if device is not None else streams
    cb_mask = streams == STREAM_CB
    ib_mask = streams == STREAM_IB
    num_cb, num_ib = int(cb_mask.sum()), int(ib_mask.sum())
    if num_cb == 0 or num_ib == 0:
        empty = 'class-balanced' if num_cb == 0 else 'instance-balanced'
        raise ValueError(
            f'The batch of {len(streams)} samples has no {empty} sample. '
            "The dataloader's batch_size must be 2 x the sampler's "
            'batch_size, so that every batch holds one batch of each '
            f'stream: {_BATCH_FIX}')
    if num_cb != num_ib:
        raise ValueError(
            f'The batch holds {num_cb} class-balanced and {num_ib} '
            "instance-balanced samples; they must be equal. The dataloader's "
            "batch_size must be 2 x the sampler's batch_size "
            '(DualClassBalancedSampler yields batch_size samples of each '
            f'stream per iteration): {_BATCH_FIX}')
    return cb_mask, ib_mask
