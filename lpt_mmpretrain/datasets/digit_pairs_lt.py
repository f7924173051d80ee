from typing import List, Optional

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from ..checks import check_choice, check_min
from .digits_lt import compose_digits, partition_digits
from .long_tail_mixin import LongTailMixin, exponential_profile

__all__ = ['DigitPairsLT']


@DATASETS.register_module()
class DigitPairsLT(LongTailMixin, BaseDataset):
    """100 long-tailed classes of two-digit numbers, from bundled digits.

    Class ``c`` ('00' .. '99') is the number ``c``: an image shows its tens
    digit in the left half and its units digit in the right half, two 8x8
    images of ``sklearn.datasets.load_digits()`` drawn side by side by
    :func:`compose_digits` (no download). Classes sharing a digit are
    similar, and a stand-in pretrained on single digits (DigitsLT's
    ``pretrain`` split, a 10-class label space) knows the parts but not the
    numbers: a small version of LPT's setting.

    The digit images are partitioned as in :class:`DigitsLT` (same
    ``seed``, ``num_test_per_class`` and ``num_pretrain_per_class``): test
    pairs are drawn from the digits' ``'test'`` part and training pairs
    from the remaining images, so no digit image is in two of the
    ``'train'``, ``'test'`` and DigitsLT ``'pretrain'`` splits. Within a
    class, pairs are distinct (sampled without replacement from every
    combination of a left and a right image).

    Class ``c`` gets ``n = exponential_profile(max_per_class, 100,
    imbalance_ratio)[rank[c]]`` training pairs, with ``rank`` a permutation
    drawn with ``seed`` so that the frequency of a class does not follow its
    digits. The val and test splits have ``num_test_pairs_per_class`` pairs
    per class.
    Every split stores the training counts in ``metainfo['cls_num_list']``.
    Samples hold ``img`` (uint8, (``img_size``, ``img_size``, 3)),
    ``gt_label`` and ``source_idx`` (the two images' indices in
    ``load_digits()``).

    Args:
        split (str): 'train', 'val' or 'test'. Defaults to 'train'.
        max_per_class (int): Training pairs of the most frequent class.
            Defaults to 40.
        imbalance_ratio (float): Head count / tail count of the training
            split. Defaults to 20 (tail classes get 2 pairs).
        num_test_pairs_per_class (int): Val and test pairs per class.
            Defaults to 10.
        img_size (int): Side of the images. Defaults to 32.
        num_test_per_class (int): Digit images per digit reserved for the
            test pairs (DigitsLT's test split). Defaults to 30.
        num_pretrain_per_class (int): Digit images per digit left out for
            pretraining (DigitsLT's pretrain split). Defaults to 60.
        num_val_per_class (int): Digit images per digit reserved for the
            validation pairs, taken from the images left for training.
            Defaults to 20.
        seed (int): Seed of the digit partition, the class ranks and the
            pairing. Defaults to 0.
        interpolation (str): Interpolation of ``mmcv.imresize``.
            Defaults to 'bilinear'.
        metainfo (dict, optional): Meta information. Defaults to None
            (classes '00' .. '99').
        test_mode (bool): ``test_mode`` of ``BaseDataset``. Defaults to
            False.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`.
    """

    METAINFO = {'classes': tuple(f'{i:02d}' for i in range(100))}
    # The order fixes each split's generator: keep 'train', 'test' first.
    splits = ('train', 'test', 'val')

    def __init__(self,
                 split: str = 'train',
                 max_per_class: int = 40,
                 imbalance_ratio: float = 20.,
                 num_test_pairs_per_class: int = 10,
                 img_size: int = 32,
                 num_test_per_class: int = 30,
                 num_pretrain_per_class: int = 60,
                 num_val_per_class: int = 20,
                 seed: int = 0,
                 interpolation: str = 'bilinear',
                 metainfo: Optional[dict] = None,
                 test_mode: bool = False,
                 **kwargs) -> None:
        check_choice('split', split, self.splits, prefix='DigitPairsLT: ')
        check_min(
            'imbalance_ratio (head count / tail count)',
            imbalance_ratio,
            1,
            prefix='DigitPairsLT: ')
        if max_per_class < 1 or num_test_pairs_per_class < 1:
            raise ValueError(
                'DigitPairsLT: max_per_class and num_test_pairs_per_class '
                f'must be >= 1, got {max_per_class} and '
                f'{num_test_pairs_per_class}.')
        if int(num_val_per_class) != num_val_per_class or \
                num_val_per_class < 1:
            raise ValueError(
                'DigitPairsLT: num_val_per_class must be an int >= 1 (digit '
                'images per digit for the val split), got '
                f'{num_val_per_class}.')
        if int(img_size) != img_size or img_size < 2:
            raise ValueError('DigitPairsLT: img_size must be an int >= 2, '
                             f'got {img_size}.')
        self.split = split
        self.max_per_class = int(max_per_class)
        self.imbalance_ratio = imbalance_ratio
        self.num_test_pairs_per_class = int(num_test_pairs_per_class)
        self.img_size = int(img_size)
        self.num_test_per_class = num_test_per_class
        self.num_pretrain_per_class = num_pretrain_per_class
        self.num_val_per_class = int(num_val_per_class)
        self.seed = seed
        self.interpolation = interpolation
        super().__init__(
            ann_file='', metainfo=metainfo, test_mode=test_mode, **kwargs)

    def class_counts(self) -> List[int]:
        """Training pairs of every class, in label order."""
        counts = exponential_profile(self.max_per_class, 100,
                                     self.imbalance_ratio)
        rank = np.random.RandomState(self.seed).permutation(100)
        return [int(counts[r]) for r in rank]

    @staticmethod
    def _pairs(rng: np.random.RandomState, left: np.ndarray, right: np.ndarray,
               num: int, cls: int) -> List[tuple]:
        """``num`` distinct (left image, right image) index pairs."""
        combos = len(left) * len(right)
        if num > combos:
            raise ValueError(
                f'DigitPairsLT: class {cls:02d} needs {num} distinct pairs '
                f'but its digits give only {combos}; lower max_per_class / '
                'num_test_pairs_per_class or num_test_per_class / '
                'num_pretrain_per_class.')
        picks = rng.choice(combos, num, replace=False)
        return [(int(left[p // len(right)]), int(right[p % len(right)]))
                for p in picks]

    def load_data_list(self) -> List[dict]:
        """Partition the digits, then draw and compose the split's pairs."""
        # Imported here: scikit-learn costs about a second (see DigitsLT).
        from sklearn.datasets import load_digits

        digits = load_digits()
        images, labels = digits.images, digits.target  # (1797, 8, 8), (1797,)
        if len(self.CLASSES) != 100:
            raise ValueError(
                f'DigitPairsLT: {len(self.CLASSES)} class names are given '
                'for the 100 numbers 00 .. 99.')
        parts = partition_digits(labels, self.num_test_per_class,
                                 self.num_pretrain_per_class, self.seed,
                                 'DigitPairsLT')
        counts = self.class_counts()
        self._set_cls_num_list(
            counts,
            source=f'the profile exponential_profile('
            f'{self.max_per_class}, 100, {self.imbalance_ratio})')

        nval = self.num_val_per_class
        if any(len(rest) <= nval for rest in parts['rest']):
            raise ValueError(
                f'DigitPairsLT: num_val_per_class={nval} leaves no training '
                'image for some digit; lower it or num_test_per_class / '
                'num_pretrain_per_class.')
        pool = dict(
            train=[rest[nval:] for rest in parts['rest']],
            val=[rest[:nval] for rest in parts['rest']],
            test=parts['test'])[self.split]
        # Every split draws from its own generator, so each split is
        # the same whichever is built first.
        rng = np.random.RandomState([self.seed, self.splits.index(self.split)])
        data_list = []
        for cls in range(100):
            num = (
                counts[cls]
                if self.split == 'train' else self.num_test_pairs_per_class)
            for i, j in self._pairs(rng, pool[cls // 10], pool[cls % 10], num,
                                    cls):
                data_list.append({
                    'img':
                    compose_digits([images[i], images[j]], self.img_size,
                                   self.interpolation),
                    'gt_label':
                    cls,
                    'source_idx': (i, j),
                })
        return data_list

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return [
            f'Split: \t{self.split}',
            f'Max per class: \t{self.max_per_class}',
            f'Imbalance ratio: \t{self.imbalance_ratio}',
            f'Image size: \t{self.img_size}',
        ]
