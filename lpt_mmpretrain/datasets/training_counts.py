"""The labels and the per-class training counts of any data set: the one
home of reading them, for the sampler, ``ClassCountsHook``,
``LongTailAccuracy`` and the data tools.

Works on the data sets of this package (``metainfo['cls_num_list']``), on
MMPretrain's own (``CustomDataset``, ``ImageNet``, ``CUB``, ...: their
``get_gt_labels``) and on MMEngine's wrappers (``ConcatDataset``,
``RepeatDataset``, ``ClassBalancedDataset``: their ``get_data_info`` /
``get_cat_ids``).
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .class_counts import check_class_counts, count_labels

__all__ = [
    'dataset_labels', 'dataset_classes', 'training_counts',
    'checkpoint_counts', 'check_same_classes', 'EMPTY_FOLDER_REASON'
]

#: The fix for a class without an image, as a user of folders reads it.
EMPTY_FOLDER_REASON = (
    'Every class needs at least one training image (the class-balanced '
    'stream draws every class, A-GCL takes log n_j). If the class is a '
    'folder (CustomDataset with data_prefix), put images in it or remove '
    'the empty folder; with an ann_file, add lines for the class or drop it '
    'from `classes`.')


def _unwrap(dataset):
    """The data set whose images a repeating wrapper repeats."""
    while hasattr(dataset, 'times') or hasattr(dataset, 'repeat_indices'):
        dataset = dataset.dataset  # RepeatDataset, ClassBalancedDataset
    return dataset


def dataset_labels(dataset) -> np.ndarray:
    """The (N,) integer label of every item of a single-label data set, in
    index order (as a loader sees them: repeats included).

    Args:
        dataset: A data set with ``get_gt_labels()``, ``get_data_info(i)``
            (holding ``gt_label``) or ``get_cat_ids(i)``.

    Returns:
        np.ndarray: The (N,) int64 labels.
    """
    name = type(dataset).__name__
    if hasattr(dataset, 'full_init'):
        dataset.full_init()  # lazy_init data sets have no labels yet
    if hasattr(dataset, 'get_gt_labels'):
        labels = np.asarray(dataset.get_gt_labels())
    elif hasattr(dataset, 'get_data_info'):
        labels = np.asarray([
            dataset.get_data_info(i).get('gt_label', -1)
            for i in range(len(dataset))
        ])
    elif hasattr(dataset, 'get_cat_ids'):
        cat_ids = [dataset.get_cat_ids(i) for i in range(len(dataset))]
        if any(len(ids) != 1 for ids in cat_ids):
            raise ValueError(
                f'{name}: get_cat_ids returned several or no labels for some '
                'images; LPT needs exactly one label per image (multi-label '
                'data is not supported).')
        labels = np.asarray([ids[0] for ids in cat_ids])
    else:
        raise TypeError(
            f'The data set {name} has neither get_gt_labels(), '
            'get_data_info(i) nor get_cat_ids(i), so the label of its '
            "images cannot be read. Give it a metainfo['cls_num_list'], or "
            'pass cls_num_list= to the loss and the metric.')
    if labels.ndim != 1 or len(labels) != len(dataset):
        raise ValueError(
            f'{name}: expected one label per image ({len(dataset)} labels), '
            f'got labels of shape {labels.shape}; LPT needs single-label '
            'data.')
    if labels.size == 0:
        raise ValueError(f'The data set {name} is empty.')
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f'{name}: labels must be integers, got dtype '
                         f'{labels.dtype}.')
    return labels.astype(np.int64)


def dataset_classes(dataset) -> Optional[Tuple[str, ...]]:
    """The class names of a data set's metainfo, or None."""
    metainfo = getattr(dataset, 'metainfo', None) or {}
    classes = metainfo.get('classes')
    return None if classes is None else tuple(str(c) for c in classes)


def _check_label_range(labels: np.ndarray, num_classes: int,
                       name: str) -> None:
    """Refuse labels outside ``0 .. num_classes - 1``, naming the fix."""
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise ValueError(
            f'{name}: {int(bad.sum())} images have a label outside 0 .. '
            f'{num_classes - 1} (the data set has {num_classes} classes), '
            f'e.g. the label {int(labels[bad][0])} of image '
            f'{int(np.flatnonzero(bad)[0])}. Fix the label column of the '
            'annotation file (labels are 0-based indices into `classes`), '
            'or give the full class list with `classes=`.')


def training_counts(dataset) -> Tuple[List[int], Optional[Tuple[str, ...]]]:
    """The number of distinct training images of every class.

    ``metainfo['cls_num_list']`` where the data set holds it (this package's
    data sets, whatever their split), else a count of the labels over the
    metainfo's ``classes``. Repeating wrappers (``RepeatDataset``,
    ``ClassBalancedDataset``) are counted without their repeats: the shot
    groups and A-GCL's ``log n_j`` are about the images a class has.

    Args:
        dataset: The training data set.

    Returns:
        tuple: ``(counts, classes)``, the counts in label order and the class
        names (None if the data set names none).

    Raises:
        ValueError: A label out of range, or a class without an image.
    """
    classes = dataset_classes(dataset)
    name = type(dataset).__name__
    metainfo = getattr(dataset, 'metainfo', None) or {}
    counts = metainfo.get('cls_num_list')
    if counts is None:
        base = _unwrap(dataset)
        labels = dataset_labels(base)
        num_classes = len(classes) if classes else int(labels.max()) + 1
        _check_label_range(labels, num_classes, type(base).__name__)
        counts = count_labels(labels, num_classes)
    elif classes is not None and len(classes) != len(counts):
        raise ValueError(
            f"{name}: the metainfo has {len(counts)} class counts "
            f'(cls_num_list) but {len(classes)} classes; they must match.')
    counts = check_class_counts(
        counts,
        classes,
        source=f'the training data ({name})',
        reason=EMPTY_FOLDER_REASON)
    return counts, classes


def checkpoint_counts(
        checkpoint: dict
) -> Tuple[Optional[List[int]], Optional[Tuple[str, ...]]]:
    """The training counts and class names a checkpoint records.

    Full checkpoints hold the training data set's metainfo in
    ``meta['dataset_meta']`` (MMEngine's runner writes it; the data sets of
    this package and ``StreamIndexDataset`` put ``cls_num_list`` in it);
    prompt-only files hold ``meta['cls_num_list']`` and ``meta['classes']``.

    Args:
        checkpoint (dict): A loaded checkpoint.

    Returns:
        tuple: ``(counts, classes)``, either None where not recorded.
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    dataset_meta = meta.get('dataset_meta') or {}
    counts = meta.get('cls_num_list') or dataset_meta.get('cls_num_list')
    classes = meta.get('classes') or dataset_meta.get('classes')
    return (None if counts is None else [int(c) for c in counts],
            None if classes is None else tuple(str(c) for c in classes))


def check_same_classes(train: Optional[Sequence[str]],
                       other: Optional[Sequence[str]], split: str,
                       source: str) -> None:
    """Refuse an evaluated split whose classes differ from training's.

    Args:
        train (Sequence[str], optional): The training classes (None: not
            known, nothing to check).
        other (Sequence[str], optional): The evaluated split's classes.
        split (str): The evaluated split, e.g. ``'val_dataloader'``.
        source (str): Where the training classes come from.
    """
    if train is None or other is None or tuple(train) == tuple(other):
        return
    missing = [c for c in other if c not in train]
    if missing:
        what = (f'{len(missing)} of its classes have no training data: '
                f'{missing[:5]}')
    elif len(other) != len(train):
        what = (f'it has {len(other)} classes, training has {len(train)}')
    else:
        what = 'its classes are in another order than training\'s'
    raise ValueError(
        f'The classes of {split} differ from those of {source}: {what}. '
        'Labels are indices into the class list, so every split must have '
        'the same classes in the same order: give each split the same '
        '`classes=` (a list, or a file with one name per line), or make '
        'the val / test folders mirror the training folders (an empty '
        'folder is fine in val / test).')
