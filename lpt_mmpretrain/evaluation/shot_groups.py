"""Shot groups and per-class accuracy: the one home of both.

``LongTailAccuracy``, ``tools/analysis_tools/plot_per_class.py`` and
``tools/demo.py`` call these functions.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'GROUPS', 'shot_group_masks', 'shot_group_convention', 'per_class_accuracy',
    'counts_from_config'
]

#: The shot groups, from head to tail.
GROUPS = ('many', 'medium', 'few')


def shot_group_masks(counts: Sequence[int],
                     many_shot_thr: int = 100,
                     few_shot_thr: int = 20,
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
    if few_shot_thr >= many_shot_thr:
        raise ValueError(
            f'few_shot_thr ({few_shot_thr}) must be smaller than '
            f'many_shot_thr ({many_shot_thr}); the usual values are 20 and '
            '100.')
    counts = np.asarray(counts)
    few = counts <= few_shot_thr if few_inclusive else counts < few_shot_thr
    many = counts > many_shot_thr
    return dict(many=many, medium=~many & ~few, few=few)


def shot_group_convention(many_shot_thr: int = 100,
                          few_shot_thr: int = 20,
                          few_inclusive: bool = False) -> Dict[str, str]:
    """The range of every group as text, e.g. ``{'many': '> 100', ...}``."""
    many, few = many_shot_thr, few_shot_thr
    if few_inclusive:
        return {'many': f'> {many}', 'medium': f'{few + 1}..{many}',
                'few': f'<= {few}'}
    return {'many': f'> {many}', 'medium': f'{few}..{many}',
            'few': f'< {few}'}


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


def counts_from_config(
    config: str,
    cfg_options: Optional[dict] = None
) -> Tuple[List[int], Optional[List[str]], Optional[Tuple[int, int, bool]]]:
    """Training class counts, class names and shot thresholds of a config.

    The config's training data set is built without its pipeline and its
    ``metainfo['cls_num_list']`` read; the thresholds are those of its
    ``LongTailAccuracy`` test evaluator.

    Args:
        config (str): A config whose ``train_dataloader`` holds a
            long-tailed data set.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        tuple: ``(counts, classes, thresholds)``; ``thresholds`` is
        ``(many_shot_thr, few_shot_thr, few_inclusive)``, or None without a
        ``LongTailAccuracy``.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS, METRICS
    from mmpretrain.utils import register_all_modules

    from .long_tail_accuracy import LongTailAccuracy

    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    dataset_cfg = cfg.train_dataloader.dataset.to_dict()
    dataset_cfg['pipeline'] = []  # only the annotations are needed
    dataset = DATASETS.build(dataset_cfg)
    counts = dataset.metainfo.get('cls_num_list')
    if counts is None:
        raise ValueError(
            f'The training data set of {config} ({type(dataset).__name__}) '
            "has no metainfo['cls_num_list']: use a long-tailed data set or "
            'give the counts with --counts.')
    classes = dataset.metainfo.get('classes')

    thresholds = None
    evaluators = cfg.get('test_evaluator', None)
    if isinstance(evaluators, dict):
        evaluators = [evaluators]
    for evaluator in evaluators or []:
        metric = METRICS.build(evaluator)
        if isinstance(metric, LongTailAccuracy):
            thresholds = (metric.many_shot_thr, metric.few_shot_thr,
                          metric.few_inclusive)
            break
    return ([int(c) for c in counts],
            list(classes) if classes is not None else None, thresholds)
