"""Shot groups and per-class accuracy: the one home of both.

The thresholds (many > 100, few < 20 training images) are written here
only; ``LongTailAccuracy``, ``tools/analysis_tools/plot_per_class.py`` and
``tools/demo.py`` call these functions.
"""
from typing import Dict, Sequence

import numpy as np

__all__ = [
    'GROUPS', 'MANY_SHOT_THR', 'FEW_SHOT_THR', 'check_shot_thresholds',
    'shot_group_masks', 'shot_group_convention', 'per_class_accuracy'
]

#: The shot groups, from head to tail.
GROUPS = ('many', 'medium', 'few')
#: Many-shot classes have more training images than this (the papers').
MANY_SHOT_THR = 100
#: Few-shot classes have fewer (or, official LPT, at most as many).
FEW_SHOT_THR = 20


def check_shot_thresholds(many_shot_thr: int,
                          few_shot_thr: int,
                          owner: str = '') -> None:
    """Refuse a few-shot threshold that is not below the many-shot one;
    ``owner`` (e.g. ``'LongTailAccuracy: '``) starts the message."""
    if few_shot_thr >= many_shot_thr:
        raise ValueError(
            f'{owner}few_shot_thr ({few_shot_thr}) must be smaller than '
            f'many_shot_thr ({many_shot_thr}); the usual values are '
            f'{FEW_SHOT_THR} and {MANY_SHOT_THR}.')


def shot_group_masks(counts: Sequence[int],
                     many_shot_thr: int = MANY_SHOT_THR,
                     few_shot_thr: int = FEW_SHOT_THR,
                     few_inclusive: bool = False) -> Dict[str, np.ndarray]:
    """Boolean (num_classes,) masks of the many / medium / few-shot classes.

    Classes are grouped by their number of training images ``n``: many
    ``n > many_shot_thr``; few ``n < few_shot_thr`` (the papers'
    convention) or ``n <= few_shot_thr`` with ``few_inclusive`` (the
    official LPT evaluation); medium the rest.

    Args:
        counts (Sequence[int]): Training images per class, label order.
        many_shot_thr (int): Defaults to 100.
        few_shot_thr (int): Defaults to 20.
        few_inclusive (bool): Defaults to False.

    Returns:
        dict: ``{'many': mask, 'medium': mask, 'few': mask}``.
    """
    check_shot_thresholds(many_shot_thr, few_shot_thr)
    counts = np.asarray(counts)
    few = counts <= few_shot_thr if few_inclusive else counts < few_shot_thr
    many = counts > many_shot_thr
    return dict(many=many, medium=~many & ~few, few=few)


def shot_group_convention(many_shot_thr: int = MANY_SHOT_THR,
                          few_shot_thr: int = FEW_SHOT_THR,
                          few_inclusive: bool = False) -> Dict[str, str]:
    """The range of every group as text, e.g. ``{'many': '> 100', ...}``."""
    many, few = many_shot_thr, few_shot_thr
    if few_inclusive:
        return {
            'many': f'> {many}',
            'medium': f'{few + 1}..{many}',
            'few': f'<= {few}'
        }
    return {'many': f'> {many}', 'medium': f'{few}..{many}', 'few': f'< {few}'}


def per_class_accuracy(pred: Sequence[int], gt: Sequence[int],
                       num_classes: int) -> np.ndarray:
    """Top-1 accuracy (%) of every class; NaN for a class without samples.

    Args:
        pred (Sequence[int]): Predicted labels, (N,).
        gt (Sequence[int]): True labels, (N,).
        num_classes (int): Number of classes.

    Returns:
        np.ndarray: (num_classes,) accuracies in percent.
    """
    pred = np.asarray(pred, dtype=np.int64)
    gt = np.asarray(gt, dtype=np.int64)
    if pred.shape != gt.shape:
        raise ValueError(f'pred {pred.shape} and gt {gt.shape} differ.')
    if gt.size and (gt.min() < 0 or gt.max() >= num_classes):
        raise ValueError(
            f'A true label ({gt.min()}..{gt.max()}) is outside 0..'
            f'{num_classes - 1}: the class counts do not belong to this test '
            'set.')
    total = np.bincount(gt, minlength=num_classes).astype(float)
    correct = np.bincount(gt[pred == gt], minlength=num_classes).astype(float)
    acc = np.full(num_classes, np.nan)
    present = total > 0
    acc[present] = 100. * correct[present] / total[present]
    return acc
