"""What the tools read out of a config: the config itself, its model built
with random weights, and its training class counts and shot thresholds."""
import os
import os.path as osp
from typing import List, Optional, Tuple, Union

import numpy as np
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS, METRICS, MODELS
from mmpretrain.utils import register_all_modules

from lpt_mmpretrain.datasets import dataset_labels, training_counts
from lpt_mmpretrain.evaluation import LongTailAccuracy

__all__ = [
    'load_config', 'build_untrained_model', 'counts_from_config',
    'split_label_counts', 'write_test_images'
]


def load_config(config: Union[str, Config],
                cfg_options: Optional[dict] = None) -> Config:
    """``config`` (a file or a Config) with ``cfg_options`` merged in, its
    default scope set and MMPretrain's modules registered."""
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    return cfg


def build_untrained_model(config: Union[str, Config],
                          cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a config's model with random weights: nothing is loaded
    (``init_weights`` is not called; an ``LPTClassifier`` is built without
    its phase-1 checkpoint)."""
    model_cfg = load_config(config, cfg_options).model.to_dict()
    if model_cfg.get('type') == 'LPTClassifier':
        model_cfg.update(phase1_checkpoint=None, allow_no_phase1=True)
    return MODELS.build(model_cfg)


def _annotations_only(dataset_cfg) -> object:
    """Build a data set config (wrappers too) without its pipelines."""
    dataset_cfg = dataset_cfg.to_dict() if hasattr(
        dataset_cfg, 'to_dict') else dict(dataset_cfg)

    def strip(cfg):
        if 'pipeline' in cfg:
            cfg['pipeline'] = []
        if isinstance(cfg.get('dataset'), dict):
            strip(cfg['dataset'])
        for sub in cfg.get('datasets') or []:
            strip(sub)

    strip(dataset_cfg)
    return DATASETS.build(dataset_cfg)


def counts_from_config(
    config: str,
    cfg_options: Optional[dict] = None
) -> Tuple[List[int], Optional[List[str]], Optional[Tuple[int, int, bool]]]:
    """Training class counts, class names and shot thresholds of a config.

    The config's training data set is built without its pipeline and
    counted by :func:`~lpt_mmpretrain.datasets.training_counts` (its
    ``metainfo['cls_num_list']``, else its labels: any MMPretrain data set);
    the thresholds are those of its ``LongTailAccuracy`` test evaluator.

    Args:
        config (str): A config with a ``train_dataloader``.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        tuple: ``(counts, classes, thresholds)``; ``thresholds`` is
        ``(many_shot_thr, few_shot_thr, few_inclusive)``, or None without a
        ``LongTailAccuracy``.
    """
    cfg = load_config(config, cfg_options)
    counts, classes = training_counts(
        _annotations_only(cfg.train_dataloader.dataset))

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


def split_label_counts(config: Union[str, Config],
                       split: str = 'test_dataloader',
                       cfg_options: Optional[dict] = None) -> List[int]:
    """Images per class of an evaluated split of a config (its labels,
    counted over the training classes' number)."""
    cfg = load_config(config, cfg_options)
    counts, _ = counts_from_config(cfg)[:2]
    dataset = _annotations_only(cfg[split].dataset)
    labels = dataset_labels(dataset)
    return np.bincount(labels, minlength=len(counts)).tolist()


def write_test_images(config: str, out_dir: str) -> List[str]:
    """One test image of the most frequent, the median and the least
    frequent training class, as PNG files named ``<group>_<class>.png``:
    something to run the inference tools on.

    The config's test data set must hold its images in memory (``img``
    arrays, as DigitPairsLT and DigitsLT do).

    Returns:
        list: The files written.
    """
    import mmcv
    counts, classes, thresholds = counts_from_config(config)
    cfg = load_config(config)
    dataset = _annotations_only(cfg.test_dataloader.dataset)
    labels = dataset_labels(dataset)
    order = np.argsort(counts, kind='stable')
    picks = (('many', order[-1]), ('medium', order[len(order) // 2]),
             ('few', order[0]))
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for group, label in picks:
        info = dataset.get_data_info(int(np.flatnonzero(labels == label)[0]))
        if 'img' not in info:
            raise ValueError(f'{config}: the test data set reads image files '
                             '(no `img` in its samples); use those files.')
        name = classes[label] if classes else str(label)
        path = osp.join(out_dir, f'{group}_{name}.png')
        mmcv.imwrite(info['img'], path)  # gray, so BGR / RGB alike
        written.append(path)
    return written
