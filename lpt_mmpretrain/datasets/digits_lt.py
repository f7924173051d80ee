from typing import List, Optional

import mmcv
import numpy as np

from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS
from .long_tail_mixin import LongTailMixin, exponential_profile

__all__ = ['DigitsLT']


@DATASETS.register_module()
class DigitsLT(LongTailMixin, BaseDataset):
    """A tiny long-tailed data set built from scikit-learn's bundled digits.

    ``sklearn.datasets.load_digits()`` ships with scikit-learn (1,797 8x8
    images of the digits 0-9, values 0..16), so this data set needs no
    download; it lets the whole LPT pipeline run in minutes on a CPU.

    The images of every class, shuffled with ``np.random.RandomState(seed)``
    (classes in label order), are split into three disjoint parts:

    - ``'test'``: the first ``num_test_per_class`` (balanced);
    - ``'pretrain'``: the next ``num_pretrain_per_class`` (balanced), used
      to pretrain a tiny ViT as a stand-in for large-scale pretraining;
    - ``'train'``: of the ``r_c`` remaining images of class ``c``, the first
      ``n_c = int(n_max * (1 / imbalance_ratio) ** (c / 9))``, with
      ``n_max = min_c r_c``. Label order sets the profile: digit 0 is the
      head (most frequent), digit 9 the tail.

    Every split stores the ``'train'`` counts in ``metainfo['cls_num_list']``.
    Images are uint8 arrays (``img_size``, ``img_size``, 3) in ``img``
    (values scaled to 0..255, resized, the gray channel repeated three
    times; start the pipeline without ``LoadImageFromFile``); ``source_idx``
    holds the image's index in ``load_digits()``.

    Args:
        split (str): 'train', 'pretrain' or 'test'. Defaults to 'train'.
        imbalance_ratio (float): Head count / tail count of the training
            split. Defaults to 10.
        img_size (int): Side of the resized images. Defaults to 32.
        num_test_per_class (int): Test images per class. Defaults to 30.
        num_pretrain_per_class (int): Pretraining images per class.
            Defaults to 60.
        seed (int): Seed of the per-class shuffle. Defaults to 0.
        interpolation (str): Interpolation of ``mmcv.imresize``.
            Defaults to 'bilinear'.
        metainfo (dict, optional): Meta information. Defaults to None
            (classes '0' .. '9').
        test_mode (bool): ``test_mode`` of ``BaseDataset``. Defaults to
            False.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            (``pipeline``, ``indices``, ...).
    """

    METAINFO = {'classes': tuple(str(i) for i in range(10))}
    splits = ('train', 'pretrain', 'test')

    def __init__(self,
                 split: str = 'train',
                 imbalance_ratio: float = 10.,
                 img_size: int = 32,
                 num_test_per_class: int = 30,
                 num_pretrain_per_class: int = 60,
                 seed: int = 0,
                 interpolation: str = 'bilinear',
                 metainfo: Optional[dict] = None,
                 test_mode: bool = False,
                 **kwargs) -> None:
        if split not in self.splits:
            raise ValueError(
                f'DigitsLT: split must be one of {self.splits}, got {split!r}.'
            )
        if imbalance_ratio < 1:
            raise ValueError('DigitsLT: imbalance_ratio (head count / tail '
                             f'count) must be >= 1, got {imbalance_ratio}.')
        if int(img_size) != img_size or img_size < 1:
            raise ValueError(
                f'DigitsLT: img_size must be a positive int, got {img_size}.')
        if num_test_per_class < 1 or num_pretrain_per_class < 0:
            raise ValueError(
                'DigitsLT: num_test_per_class must be >= 1 and '
                'num_pretrain_per_class >= 0, got '
                f'{num_test_per_class} and {num_pretrain_per_class}.')
        if split == 'pretrain' and num_pretrain_per_class == 0:
            raise ValueError("DigitsLT: split='pretrain' needs "
                             'num_pretrain_per_class >= 1.')
        self.split = split
        self.imbalance_ratio = imbalance_ratio
        self.img_size = int(img_size)
        self.num_test_per_class = num_test_per_class
        self.num_pretrain_per_class = num_pretrain_per_class
        self.seed = seed
        self.interpolation = interpolation
        super().__init__(
            ann_file='', metainfo=metainfo, test_mode=test_mode, **kwargs)

    def _partition(self, labels: np.ndarray, num_classes: int) -> dict:
        """Indices of every split, one array per class."""
        n_test, n_pre = self.num_test_per_class, self.num_pretrain_per_class
        rng = np.random.RandomState(self.seed)
        parts = {split: [] for split in self.splits}
        remaining = []
        for cls in range(num_classes):
            idx = np.where(labels == cls)[0]
            if len(idx) <= n_test + n_pre:
                raise ValueError(
                    f'DigitsLT: class {cls} has {len(idx)} images, not more '
                    'than num_test_per_class + num_pretrain_per_class = '
                    f'{n_test + n_pre}; lower them so that training images '
                    'remain.')
            rng.shuffle(idx)
            parts['test'].append(idx[:n_test])
            parts['pretrain'].append(idx[n_test:n_test + n_pre])
            remaining.append(idx[n_test + n_pre:])
        n_max = min(len(r) for r in remaining)
        counts = exponential_profile(n_max, num_classes, self.imbalance_ratio)
        if min(counts) < 1:
            raise ValueError(
                f'DigitsLT: with imbalance_ratio={self.imbalance_ratio} and '
                f'{n_max} images left for the head class, the tail classes '
                f'get no training image (counts {counts}). Lower '
                'imbalance_ratio or num_test_per_class / '
                'num_pretrain_per_class.')
        parts['train'] = [r[:n] for r, n in zip(remaining, counts)]
        return parts

    def load_data_list(self) -> List[dict]:
        """Partition the digits and build the images of the split."""
        # Imported here: scikit-learn (with SciPy) costs about a second, which
        # every import of the package would otherwise pay.
        from sklearn.datasets import load_digits

        digits = load_digits()
        images, labels = digits.images, digits.target  # (1797, 8, 8), (1797,)
        num_classes = len(self.CLASSES)
        if labels.max() + 1 != num_classes:
            raise ValueError(
                f'DigitsLT: {len(self.CLASSES)} class names are given but '
                f'the digits have {labels.max() + 1} classes.')
        parts = self._partition(labels, num_classes)
        self._set_cls_num_list([len(p) for p in parts['train']],
                               source="the 'train' split")

        scale = 255. / 16.
        data_list = []
        for idx in np.concatenate(parts[self.split]):
            img = np.round(images[idx] * scale).clip(0, 255).astype(np.uint8)
            img = mmcv.imresize(
                img, (self.img_size, self.img_size),
                interpolation=self.interpolation)
            data_list.append({
                'img': np.repeat(img[..., None], 3, axis=2),
                'gt_label': int(labels[idx]),
                'source_idx': int(idx),
            })
        return data_list

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return [
            f'Split: \t{self.split}',
            f'Imbalance ratio: \t{self.imbalance_ratio}',
            f'Image size: \t{self.img_size}',
        ]
