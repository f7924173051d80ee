"""Per-class training counts: the one home of counting labels, refusing
classes without a training image, and the exponential long-tailed profile.

Imports nothing but NumPy and the bottom-floor :mod:`lpt_mmpretrain.checks`,
so any part of the package (data sets, samplers, losses, hooks, tools) can
call it without an import cycle.
"""
from typing import List, Optional, Sequence

import numpy as np

from ..checks import check_min

__all__ = ['exponential_profile', 'count_labels', 'check_class_counts']

#: Why an empty class is refused, the end of :func:`check_class_counts`'s
#: default message.
EMPTY_CLASS_REASON = (
    'Long-tailed training needs at least one training image per class (the '
    'class counts enter log n_j of the A-GCL loss); fix the training '
    'annotation, or lower the imbalance ratio / number of classes so that '
    'every class keeps an image.')


def exponential_profile(img_max: float, num_classes: int,
                        imbalance_ratio: float) -> List[int]:
    """Per-class image counts of an exponential long-tailed profile.

    ``n_i = int(img_max * (1 / imbalance_ratio) ** (i / (num_classes - 1)))``
    for ``i = 0 .. num_classes - 1`` (the LDAM-DRW recipe of CIFAR-10-LT and
    CIFAR-100-LT): class 0 is the head, the last class the tail.

    Args:
        img_max (float): Number of images of the head class (before
            ``int``).
        num_classes (int): Number of classes.
        imbalance_ratio (float): Ratio ``rho`` between the head and the
            tail class counts, at least 1.

    Returns:
        List[int]: The counts, in label order.
    """
    check_min('num_classes', num_classes, 1)
    if imbalance_ratio < 1:
        raise ValueError(
            'imbalance_ratio must be >= 1 (head count / tail count), got '
            f'{imbalance_ratio}. Use e.g. 100, 50 or 10 for CIFAR-100-LT.')
    if num_classes == 1:
        return [int(img_max)]
    factor = 1. / imbalance_ratio
    return [
        int(img_max * factor**(i / (num_classes - 1.)))
        for i in range(num_classes)
    ]


def count_labels(labels: Sequence[int],
                 num_classes: Optional[int] = None,
                 source: str = 'the labels') -> List[int]:
    """Number of samples of every class.

    Args:
        labels (Sequence[int]): Class index of every sample.
        num_classes (int, optional): Number of classes; the result has this
            length. Defaults to None: the largest label + 1.
        source (str): Where the labels come from, for error messages.
            Defaults to 'the labels'.

    Returns:
        List[int]: The counts, in label order.
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if labels.size and labels.min() < 0:
        raise ValueError(
            f'{source} hold the negative label {labels.min()}; labels are '
            'class indices 0 .. num_classes - 1.')
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    elif labels.size and labels.max() >= num_classes:
        raise ValueError(
            f'{source} hold the label {labels.max()}, out of range for '
            f'{num_classes} classes.')
    return np.bincount(labels, minlength=num_classes).tolist()


def check_class_counts(counts: Sequence[int],
                       classes: Optional[Sequence[str]] = None,
                       source: str = 'the training split',
                       name: str = '',
                       reason: str = EMPTY_CLASS_REASON) -> List[int]:
    """Refuse classes without a training image, naming the first few.

    Args:
        counts (Sequence[int]): Training images per class, label order.
        classes (Sequence[str], optional): Class names, shown next to the
            indices of the empty classes. Defaults to None.
        source (str): Where the counts come from. Defaults to 'the training
            split'.
        name (str): Who checks (e.g. the data set's class name), the start
            of the message. Defaults to ''.
        reason (str): Why an empty class is refused and how to fix it, the
            end of the message. Defaults to :data:`EMPTY_CLASS_REASON`.

    Returns:
        List[int]: The counts as ints.
    """
    counts = [int(c) for c in counts]
    empty = [i for i, c in enumerate(counts) if c <= 0]
    if empty:
        shown = ', '.join(
            str(i) if classes is None else f'{i} ({classes[i]!r})'
            for i in empty[:5])
        more = ', ...' if len(empty) > 5 else ''
        prefix = f'{name}: ' if name else ''
        raise ValueError(
            f'{prefix}{len(empty)} of {len(counts)} classes have no training '
            f'image in {source}: class {shown}{more}. {reason}')
    return counts
