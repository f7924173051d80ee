"""The class distribution of a training split: the figures of
``tools/analysis_tools/class_distribution.py``."""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from lpt_mmpretrain.evaluation import (GROUPS, shot_group_convention,
                                       shot_group_masks)

__all__ = ['suggest_thresholds', 'distribution_report', 'format_report']

#: Candidate thresholds tried by :func:`suggest_thresholds` (at most).
MAX_CANDIDATES = 200


def suggest_thresholds(counts: Sequence[int]) -> Optional[Tuple[int, int]]:
    """``(many_shot_thr, few_shot_thr)`` (papers' convention) that make the
    three shot groups as even as possible: the smallest group is as large
    as it can be. None with fewer than 3 distinct counts (no split makes
    three non-empty groups).

    Args:
        counts (Sequence[int]): Training images per class.
    """
    counts = np.sort(np.asarray(counts, dtype=np.int64))
    values = np.unique(counts)
    if len(values) < 3:
        return None
    if len(values) > MAX_CANDIDATES:
        values = np.unique(
            np.quantile(values, np.linspace(0, 1,
                                            MAX_CANDIDATES)).astype(np.int64))
    many_thr, few_thr = np.meshgrid(values, values, indexing='ij')
    num_many = len(counts) - np.searchsorted(counts, many_thr, 'right')
    num_few = np.searchsorted(counts, few_thr, 'left')
    num_medium = len(counts) - num_many - num_few
    smallest = np.minimum(np.minimum(num_many, num_few), num_medium)
    smallest = np.where(few_thr < many_thr, smallest, -1)
    best = np.unravel_index(np.argmax(smallest), smallest.shape)
    if smallest[best] <= 0:
        return None
    return int(many_thr[best]), int(few_thr[best])


def distribution_report(counts: Sequence[int],
                        classes: Optional[Sequence[str]] = None,
                        thresholds: Optional[Tuple[int, int, bool]] = None,
                        test_counts: Optional[Sequence[int]] = None,
                        min_test: int = 5,
                        num_shown: int = 3) -> Dict:
    """The facts the tool prints, as a dict.

    Args:
        counts (Sequence[int]): Training images per class.
        classes (Sequence[str], optional): Class names.
        thresholds (tuple, optional): ``(many, few, few_inclusive)`` of the
            config's ``LongTailAccuracy``.
        test_counts (Sequence[int], optional): Images per class of the
            evaluated split.
        min_test (int): A class with fewer evaluated images (or, without
            ``test_counts``, fewer than 2 training images: nothing to hold
            out) is listed as too small to test. Defaults to 5.
        num_shown (int): Head and tail classes listed. Defaults to 3.
    """
    counts = np.asarray(counts, dtype=np.int64)
    names = list(classes) if classes is not None else [
        str(i) for i in range(len(counts))
    ]
    order = np.argsort(-counts, kind='stable')
    report = dict(
        num_classes=len(counts),
        num_images=int(counts.sum()),
        imbalance_ratio=float(counts.max() / max(counts.min(), 1)),
        head=[(names[i], int(counts[i])) for i in order[:num_shown]],
        tail=[(names[i], int(counts[i])) for i in order[::-1][:num_shown]])
    if thresholds is not None:
        masks = shot_group_masks(counts, *thresholds)
        report['groups'] = {g: int(masks[g].sum()) for g in GROUPS}
        report['convention'] = shot_group_convention(*thresholds)
    report['suggested'] = suggest_thresholds(counts)
    if test_counts is not None:
        small = [(names[i], int(n)) for i, n in enumerate(test_counts)
                 if n < min_test]
        report['too_few_to_test'] = (small, f'fewer than {min_test} images '
                                     'in the evaluated split')
    else:
        small = [(names[i], int(n)) for i, n in enumerate(counts) if n < 2]
        report['too_few_to_test'] = (small, 'fewer than 2 images: none to '
                                     'hold out for testing')
    return report


def format_report(report: Dict) -> List[str]:
    """The report as the lines the tool prints."""
    lines = [
        f'classes: {report["num_classes"]}',
        f'training images: {report["num_images"]}',
        f'imbalance ratio (largest / smallest class): '
        f'{report["imbalance_ratio"]:.1f}',
        'head classes: ' + ', '.join(f'{n} ({c})' for n, c in report['head']),
        'tail classes: ' + ', '.join(f'{n} ({c})' for n, c in report['tail']),
    ]
    if 'groups' in report:
        lines.append('shot groups under the config\'s thresholds: ' +
                     ', '.join(f'{g} {report["convention"][g]}: '
                               f'{report["groups"][g]}' for g in GROUPS))
        empty = [g for g in GROUPS if report['groups'][g] == 0]
        if empty:
            lines.append(f'  empty: {", ".join(empty)} (that metric is left '
                         'out; choose other thresholds)')
    suggested = report['suggested']
    if suggested is None:
        lines.append('suggested thresholds: none (fewer than 3 distinct '
                     'class counts)')
    else:
        many, few = suggested
        lines.append(f'suggested thresholds: many_shot_thr={many} '
                     f'few_shot_thr={few} (--cfg-options '
                     f'val_evaluator.many_shot_thr={many} '
                     f'val_evaluator.few_shot_thr={few} '
                     f'test_evaluator.many_shot_thr={many} '
                     f'test_evaluator.few_shot_thr={few})')
    small, why = report['too_few_to_test']
    lines.append(f'classes with too few images to test ({why}): ' +
                 (', '.join(f'{n} ({c})' for n, c in small) or 'none'))
    return lines
