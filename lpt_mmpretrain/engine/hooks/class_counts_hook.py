import logging
from typing import List, Optional, Tuple

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop
from mmpretrain.registry import DATASETS, HOOKS

from ...datasets.long_tail_mixin import LongTailMixin
from ...datasets.stream_index_dataset import StreamIndexDataset
from ...datasets.training_counts import (check_same_classes, checkpoint_counts,
                                         dataset_classes, training_counts)

__all__ = ['ClassCountsHook', 'check_num_classes']


@HOOKS.register_module()
class ClassCountsHook(Hook):
    """Give the training split's class counts to the head and to
    ``LongTailAccuracy``, and check that the splits and the head agree.

    The counts are those of :func:`~lpt_mmpretrain.datasets.training_counts`:
    ``metainfo['cls_num_list']`` of the training data set (every long-tailed
    data set of this package) or a count of its labels over its ``classes``
    (any MMPretrain data set, e.g. ``CustomDataset``, and MMEngine's
    wrappers).

    - ``before_train``: the counts go to ``model.head.set_class_counts``
      (``CosineClsHead``, which passes them to ``AsymmetricGCLLoss``; a loss
      built with its own ``cls_num_list`` keeps it) and to every
      ``LongTailAccuracy`` of the val / test evaluators, so validation groups
      classes by their **training** counts. Before that, a head whose
      ``num_classes`` differs from the data's classes, or a val / test split
      whose classes differ from training's, is an error.
    - ``after_load_checkpoint`` (``tools/test.py``, MMPretrain's packaged
      ``test.py``: no training loader): the counts come from the checkpoint's
      meta (:func:`~lpt_mmpretrain.datasets.checkpoint_counts`: full files
      carry the training metainfo, prompt-only files ``cls_num_list`` and
      ``classes``), else from an evaluated long-tailed data set of this
      package (its ``metainfo['cls_num_list']`` holds the training counts
      whatever its split, e.g. ``PlacesLT`` with ``train_ann_file``), else
      from the config's ``train_dataloader.dataset``.

    The hook has no arguments; add ``dict(type='ClassCountsHook')`` to
    ``custom_hooks``.
    """

    # Before any other hook that may run the model at the start of training.
    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        """Check the splits and the head, then give them the counts.

        Args:
            runner (Runner): The runner of the training process.
        """
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        head = getattr(model, 'head', None)
        takes_counts = callable(getattr(head, 'set_class_counts', None))
        loops = list(_eval_loops(runner))
        if not takes_counts:
            print_log(
                f'ClassCountsHook: the head {type(head).__name__} takes no '
                'class counts (it has no set_class_counts).',
                logger='current',
                level=logging.WARNING)
            if not any(_long_tail_metrics(loop) for _, loop in loops):
                return

        dataset = runner.train_dataloader.dataset
        counts, source = self.class_counts(dataset)
        # the user's data set, not the loop's StreamIndexDataset around it
        inner = dataset.dataset if isinstance(dataset,
                                              StreamIndexDataset) else dataset
        source = f'the training data ({type(inner).__name__}, {source})'
        classes = dataset_classes(dataset)
        check_num_classes(
            getattr(head, 'num_classes', None), len(counts), source)
        for split, loop in loops:
            check_same_classes(classes,
                               dataset_classes(loop.dataloader.dataset), split,
                               source)
            _give_metrics(loop, counts, source)
        if not takes_counts:
            return
        taken = head.set_class_counts(counts)
        for name, took in taken.items():
            if took:
                print_log(
                    f'ClassCountsHook: set the class counts of `head.{name}` '
                    f'from {source} ({len(counts)} classes, max '
                    f'{max(counts)}, min {min(counts)}).',
                    logger='current')
            else:
                print_log(
                    f'ClassCountsHook: `head.{name}` keeps its own class '
                    'counts.',
                    logger='current')
        if not taken:
            print_log(
                'ClassCountsHook: no loss of the head takes class counts.',
                logger='current',
                level=logging.WARNING)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Give the training counts to the evaluators of a test run.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The loaded checkpoint.
        """
        loops = [(split, loop) for split, loop in _eval_loops(runner)
                 if _metrics_needing_counts(loop)]
        if not loops:
            return
        counts, classes = checkpoint_counts(checkpoint)
        source = 'the checkpoint\'s meta'
        train_loop = getattr(runner, '_train_loop', None)
        if counts is None and isinstance(train_loop, BaseLoop):
            return  # training: before_train gives this run's counts
        if counts is None:
            counts, classes, source = _recorded_training_counts(loops)
        if counts is None:
            train_cfg = runner.cfg.get('train_dataloader')
            if not train_cfg or not train_cfg.get('dataset'):
                return  # LongTailAccuracy raises with the fix
            train_set = DATASETS.build(train_cfg['dataset'])
            counts, _ = self.class_counts(train_set)
            classes = dataset_classes(train_set)
            source = ("the config's train_dataloader.dataset "
                      f'({type(train_set).__name__})')
        for split, loop in loops:
            check_same_classes(classes,
                               dataset_classes(loop.dataloader.dataset), split,
                               source)
            _give_metrics(loop, counts, source)

    @staticmethod
    def class_counts(dataset) -> Tuple[List[int], str]:
        """The per-class training counts of a data set.

        Args:
            dataset: The training data set.

        Returns:
            tuple[list[int], str]: The counts in label order and where they
            came from (for the log).
        """
        if isinstance(dataset, StreamIndexDataset):
            dataset = dataset.dataset
        metainfo = getattr(dataset, 'metainfo', None) or {}
        if metainfo.get('classes') is None and \
                metainfo.get('cls_num_list') is None:
            print_log(
                "ClassCountsHook: the data set's metainfo has no classes; "
                'assuming largest label + 1 classes.',
                logger='current',
                level=logging.WARNING)
        counts, _ = training_counts(dataset)
        source = ("its metainfo['cls_num_list']"
                  if 'cls_num_list' in metainfo else 'its labels')
        return counts, source


def check_num_classes(head_classes: Optional[int], num_classes: int,
                      source: str) -> None:
    """Refuse a head whose ``num_classes`` is not the data's."""
    if head_classes is None or int(head_classes) == num_classes:
        return
    raise ValueError(
        f'The model head predicts {head_classes} classes '
        f'(model.head.num_classes={head_classes}) but {source} has '
        f'{num_classes} classes, and A-GCL needs the counts of '
        f'{head_classes} classes. Set model.head.num_classes={num_classes} '
        f'(e.g. --cfg-options model.head.num_classes={num_classes}), or fix '
        'the class list of the data.')


def _recorded_training_counts(loops):
    """``(counts, classes, source)`` of the first evaluated data set that
    records its training counts, else Nones: a :class:`LongTailMixin` data
    set, file-based ones only with a ``train_ann_file`` (without one, a
    split file's counts are its own)."""
    for split, loop in loops:
        dataset = loop.dataloader.dataset
        counts = getattr(dataset, 'metainfo', {}).get('cls_num_list')
        own_counts = hasattr(dataset, 'train_ann_file') and \
            dataset.train_ann_file is None
        if isinstance(dataset, LongTailMixin) and counts is not None \
                and not own_counts:
            return ([int(c) for c in counts], dataset_classes(dataset),
                    f"the {split} data set's metainfo['cls_num_list'] "
                    f'({type(dataset).__name__}: training counts)')
    return None, None, None


def _eval_loops(runner):
    """``(name, loop)`` of the val / test loops already built."""
    for split, attr in (('val_dataloader', '_val_loop'), ('test_dataloader',
                                                          '_test_loop')):
        loop = getattr(runner, attr, None)
        if isinstance(loop, BaseLoop) and hasattr(loop, 'evaluator'):
            yield split, loop


def _long_tail_metrics(loop):
    return [
        m for m in getattr(loop.evaluator, 'metrics', [])
        if callable(getattr(m, 'set_training_counts', None))
    ]


def _metrics_needing_counts(loop):
    return [m for m in _long_tail_metrics(loop) if not m.has_counts]


def _give_metrics(loop, counts: List[int], source: str) -> None:
    for metric in _long_tail_metrics(loop):
        metric.set_training_counts(counts, source)
