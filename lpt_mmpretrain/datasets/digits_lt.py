from typing import List, Optional, Sequence

import mmcv
import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from ..checks import check_choice, check_min
from .long_tail_mixin import LongTailMixin, exponential_profile

__all__ = ['DigitsLT', 'partition_digits', 'compose_digits']

#: Pixel values of ``load_digits()`` run from 0 to this.
DIGITS_MAX_VALUE = 16.


def partition_digits(labels: np.ndarray,
                     num_test: int,
                     num_pretrain: int,
                     seed: int,
                     name: str = 'DigitsLT') -> dict:
    """Split the digit images of every class into three disjoint parts.

    The images of every class (in label order) are shuffled with one
    ``np.random.RandomState(seed)``; the first ``num_test`` are ``'test'``,
    the next ``num_pretrain`` ``'pretrain'``, the rest ``'rest'``. DigitsLT
    and DigitPairsLT share this partition, so a stand-in pretrained on the
    ``'pretrain'`` part never saw an image of their training or test splits.

    Args:
        labels (np.ndarray): The digit of every image, (N,).
        num_test (int): Test images per class.
        num_pretrain (int): Pretraining images per class.
        seed (int): Seed of the shuffle.
        name (str): Data set named in errors. Defaults to 'DigitsLT'.

    Returns:
        dict: ``'test'``, ``'pretrain'`` and ``'rest'``, each a list with one
        index array per class.
    """
    rng = np.random.RandomState(seed)
    parts = {'test': [], 'pretrain': [], 'rest': []}
    for cls in range(int(labels.max()) + 1):
        idx = np.where(labels == cls)[0]
        if len(idx) <= num_test + num_pretrain:
            raise ValueError(
                f'{name}: class {cls} has {len(idx)} images, not more than '
                'num_test_per_class + num_pretrain_per_class = '
                f'{num_test + num_pretrain}; lower them so that training '
                'images remain.')
        rng.shuffle(idx)
        parts['test'].append(idx[:num_test])
        parts['pretrain'].append(idx[num_test:num_test + num_pretrain])
        parts['rest'].append(idx[num_test + num_pretrain:])
    return parts


def compose_digits(digits: Sequence[Optional[np.ndarray]],
                   img_size: int,
                   interpolation: str = 'bilinear') -> np.ndarray:
    """Draw 8x8 digits side by side on a square canvas.

    ``k`` digits (``None`` leaves a slot blank) make an 8 x 8k strip,
    centred vertically on an 8k x 8k black canvas; values are scaled from
    0..16 to 0..255 and the canvas is resized to ``img_size``. One digit
    fills the whole image; two share it, each ``img_size / 2`` wide.

    Args:
        digits (Sequence[np.ndarray | None]): (8, 8) images of
            ``load_digits()``, left to right.
        img_size (int): Side of the output image.
        interpolation (str): Interpolation of ``mmcv.imresize``. Defaults
            to 'bilinear'.

    Returns:
        np.ndarray: (img_size, img_size, 3) uint8, the gray channel
        repeated.
    """
    side = 8 * len(digits)
    canvas = np.zeros((side, side), np.float64)
    top = (side - 8) // 2
    for i, digit in enumerate(digits):
        if digit is not None:
            canvas[top:top + 8, 8 * i:8 * i + 8] = digit
    img = np.round(canvas * (255. / DIGITS_MAX_VALUE)).clip(0, 255)
    img = mmcv.imresize(
        img.astype(np.uint8), (img_size, img_size),
        interpolation=interpolation)
    return np.repeat(img[..., None], 3, axis=2)


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
    holds the image's index in ``load_digits()``. ``layout='left'`` or
    ``'right'`` draws the digit at half size in that half of the image, where
    :class:`DigitPairsLT` puts the first or the second digit of a number
    (see :func:`compose_digits`).

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
        layout (str): 'full', 'left' or 'right': where the digit is drawn.
            Defaults to 'full'.
        metainfo (dict, optional): Meta information. Defaults to None
            (classes '0' .. '9').
        test_mode (bool): ``test_mode`` of ``BaseDataset``. Defaults to
            False.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            (``pipeline``, ``indices``, ...).
    """

    METAINFO = {'classes': tuple(str(i) for i in range(10))}
    splits = ('train', 'pretrain', 'test')
    layouts = ('full', 'left', 'right')

    def __init__(self,
                 split: str = 'train',
                 imbalance_ratio: float = 10.,
                 img_size: int = 32,
                 num_test_per_class: int = 30,
                 num_pretrain_per_class: int = 60,
                 seed: int = 0,
                 interpolation: str = 'bilinear',
                 layout: str = 'full',
                 metainfo: Optional[dict] = None,
                 test_mode: bool = False,
                 **kwargs) -> None:
        check_choice('split', split, self.splits, prefix='DigitsLT: ')
        check_choice('layout', layout, self.layouts, prefix='DigitsLT: ')
        check_min(
            'imbalance_ratio (head count / tail count)',
            imbalance_ratio,
            1,
            prefix='DigitsLT: ')
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
        self.layout = layout
        super().__init__(
            ann_file='', metainfo=metainfo, test_mode=test_mode, **kwargs)

    def _partition(self, labels: np.ndarray, num_classes: int) -> dict:
        """Indices of every split, one array per class."""
        parts = partition_digits(labels, self.num_test_per_class,
                                 self.num_pretrain_per_class, self.seed)
        remaining = parts.pop('rest')
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

        slots = {'full': (0, 1), 'left': (0, 2), 'right': (1, 2)}
        slot, num_slots = slots[self.layout]
        data_list = []
        for idx in np.concatenate(parts[self.split]):
            digits = [None] * num_slots
            digits[slot] = images[idx]
            data_list.append({
                'img':
                compose_digits(digits, self.img_size, self.interpolation),
                'gt_label':
                int(labels[idx]),
                'source_idx':
                int(idx),
            })
        return data_list

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return [
            f'Split: \t{self.split}',
            f'Imbalance ratio: \t{self.imbalance_ratio}',
            f'Image size: \t{self.img_size}',
            f'Layout: \t{self.layout}',
        ]
