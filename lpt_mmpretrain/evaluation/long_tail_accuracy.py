from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmpretrain.registry import METRICS

from .shot_groups import (FEW_SHOT_THR, MANY_SHOT_THR, check_shot_thresholds,
                          per_class_accuracy, shot_group_convention,
                          shot_group_masks)

__all__ = ['LongTailAccuracy']


def _to_int(value) -> int:
    """A label stored as an int, a 1-element tensor or array."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        flat = value.reshape(-1)
        if len(flat) != 1:
            raise ValueError(
                'LongTailAccuracy expects one label per sample, got '
                f'{value!r}; it handles single-label classification only.')
        return int(flat[0])
    return int(value)


@METRICS.register_module()
class LongTailAccuracy(BaseMetric):
    """Top-1 accuracy overall, per class and per shot group.

    Classes are grouped by their number of **training** images ``n``, taken
    from, in this order: ``cls_num_list``; the counts ``ClassCountsHook``
    gives (:meth:`set_training_counts`: the training data of a training run;
    in ``tools/test.py`` and MMPretrain's ``test.py`` the counts recorded in
    the checkpoint, else the config's training data); the evaluated data
    set's ``metainfo['cls_num_list']``, which the long-tailed data sets of
    this package fill with their training split's counts whatever their
    split. A plain data set (e.g. ``CustomDataset``) has no counts of its
    own: without the hook it is an error, never its own counts.

    - ``few_inclusive=False`` (the papers' convention): many ``n > many``,
      medium ``few <= n <= many``, few ``n < few``;
    - ``few_inclusive=True`` (the official LPT evaluation): many
      ``n > many``, medium ``few < n <= many``, few ``n <= few``.

    Results (percent, 0-100): ``top1`` over all samples, ``class_mean`` the
    mean of the per-class accuracies of the classes present in the evaluated
    set, and ``many`` / ``medium`` / ``few`` the mean per-class accuracy of
    the present classes of each group. A group without any present class is
    left out of the results, with a logged note.

    Args:
        many_shot_thr (int): Classes with more training images are
            many-shot. Defaults to 100.
        few_shot_thr (int): Few-shot threshold, see ``few_inclusive``.
            Defaults to 20.
        few_inclusive (bool): Whether a class with exactly ``few_shot_thr``
            training images is few-shot (official LPT) rather than
            medium-shot (papers). Defaults to False.
        cls_num_list (Sequence[int], optional): Training images per class,
            label order. Defaults to None: read from ``dataset_meta``.
        collect_device (str): Device used to collect results across ranks,
            'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names. Defaults to
            None, i.e. ``default_prefix`` 'long_tail'.

    Examples:
        >>> val_evaluator = [
        ...     dict(type='Accuracy', topk=(1, 5)),
        ...     dict(type='LongTailAccuracy'),
        ... ]
    """
    default_prefix: Optional[str] = 'long_tail'

    def __init__(self,
                 many_shot_thr: int = MANY_SHOT_THR,
                 few_shot_thr: int = FEW_SHOT_THR,
                 few_inclusive: bool = False,
                 cls_num_list: Optional[Sequence[int]] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        check_shot_thresholds(many_shot_thr, few_shot_thr,
                              'LongTailAccuracy: ')
        self.many_shot_thr = many_shot_thr
        self.few_shot_thr = few_shot_thr
        self.few_inclusive = few_inclusive
        self.cls_num_list = None if cls_num_list is None else [
            int(n) for n in cls_num_list
        ]
        self._training_counts: Optional[List[int]] = None
        self._counts_source = ''

    @property
    def has_counts(self) -> bool:
        """bool: Whether training counts were given (argument or hook)."""
        return (self.cls_num_list is not None
                or self._training_counts is not None)

    def set_training_counts(self, counts: Sequence[int], source: str) -> None:
        """Group the classes by these training counts (``ClassCountsHook``
        calls it; ``cls_num_list``, if given, still wins).

        Args:
            counts (Sequence[int]): Training images per class, label order.
            source (str): Where they come from, for the log.
        """
        self._training_counts = [int(n) for n in counts]
        self._counts_source = source

    def _counts(self) -> Tuple[Sequence[int], str]:
        """The training counts and a log line saying whence."""
        if self.cls_num_list is not None:
            return self.cls_num_list, 'the cls_num_list argument'
        if self._training_counts is not None:
            return self._training_counts, self._counts_source
        meta = self.dataset_meta or {}
        if meta.get('cls_num_list') is not None:
            return (meta['cls_num_list'],
                    "the evaluated data set's metainfo['cls_num_list'] (its "
                    "training split's counts)")
        raise ValueError(
            'LongTailAccuracy groups classes by their number of training '
            'images, but the evaluated data set holds no training counts '
            "(no metainfo['cls_num_list'], e.g. a CustomDataset) and none "
            "were given. Add dict(type='ClassCountsHook') to custom_hooks "
            '(it reads them from the training data, or in tools/test.py from '
            'the checkpoint or the config\'s train_dataloader), or pass '
            'LongTailAccuracy(cls_num_list=[...]).')

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Store the predicted and the true label of every sample.

        Args:
            data_batch: A batch of data from the dataloader (unused).
            data_samples (Sequence[dict]): A batch of model outputs, each
                with ``gt_label`` and ``pred_label`` or ``pred_score``.
        """
        for data_sample in data_samples:
            if 'pred_label' in data_sample:
                pred = _to_int(data_sample['pred_label'])
            elif 'pred_score' in data_sample:
                pred = int(torch.as_tensor(data_sample['pred_score']).argmax())
            else:
                raise KeyError(
                    'LongTailAccuracy: a data sample has neither '
                    '`pred_label` nor `pred_score`; evaluate the output of '
                    "the model's predict mode.")
            self.results.append(
                dict(
                    pred_label=pred,
                    gt_label=_to_int(data_sample['gt_label'])))

    def _groups(self, counts: np.ndarray) -> Dict[str, np.ndarray]:
        """Boolean (num_classes, ) masks of the shot groups."""
        return shot_group_masks(counts, self.many_shot_thr, self.few_shot_thr,
                                self.few_inclusive)

    def _convention(self) -> str:
        ranges = shot_group_convention(self.many_shot_thr, self.few_shot_thr,
                                       self.few_inclusive)
        name = ('official LPT convention'
                if self.few_inclusive else "papers' convention")
        return f'{name}: ' + ', '.join(f'{g} {r}' for g, r in ranges.items())

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Compute the accuracies from the processed results.

        Args:
            results (List[dict]): ``pred_label`` and ``gt_label`` of every
                sample, gathered from all ranks.

        Returns:
            Dict[str, float]: ``top1``, ``class_mean`` and those of ``many``,
            ``medium`` and ``few`` whose group has an evaluated class.
        """
        counts, source = self._counts()
        counts = np.asarray(counts, dtype=np.int64)
        if not results:
            raise ValueError('LongTailAccuracy got no result to evaluate.')

        pred = np.array([r['pred_label'] for r in results], dtype=np.int64)
        gt = np.array([r['gt_label'] for r in results], dtype=np.int64)
        num_classes = len(counts)
        if gt.min() < 0 or gt.max() >= num_classes:
            raise ValueError(
                f'LongTailAccuracy: a ground-truth label ({gt.min()} .. '
                f'{gt.max()}) is outside the {num_classes} classes of '
                'cls_num_list; the counts must cover every class.')

        acc_c = per_class_accuracy(pred, gt, num_classes)
        present = ~np.isnan(acc_c)
        metrics = dict(
            top1=float((pred == gt).mean() * 100.),
            class_mean=float(acc_c[present].mean()))
        sizes = []
        for name, mask in self._groups(counts).items():
            evaluated = mask & present
            sizes.append(f'{name} {int(mask.sum())} '
                         f'({int(evaluated.sum())} evaluated)')
            if evaluated.any():
                metrics[name] = float(acc_c[evaluated].mean())
            else:
                print_log(
                    f'LongTailAccuracy: no evaluated class is {name}-shot; '
                    f'`{name}` is left out of the results.',
                    logger='current')
        print_log(
            f'LongTailAccuracy: classes per shot group ({self._convention()})'
            f': {", ".join(sizes)}; training counts from {source}.',
            logger='current')
        return metrics
