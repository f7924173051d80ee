from typing import List, Optional

import numpy as np
from mmengine.fileio import exists, join_path
from mmpretrain.datasets import CIFAR10
from mmpretrain.datasets.utils import check_md5
from mmpretrain.registry import DATASETS

from .class_counts import count_labels, exponential_profile
from .long_tail_mixin import LongTailMixin

__all__ = ['CIFAR10LT']


@DATASETS.register_module()
class CIFAR10LT(LongTailMixin, CIFAR10):
    """CIFAR-10-LT: the exponential long-tailed subset of CIFAR-10.

    MMPretrain's :class:`~mmpretrain.datasets.CIFAR10` reads the pickles
    (``cifar-10-batches-py/`` under ``data_root``/``data_prefix``, the files
    checked against the official md5 sums); this class keeps the long-tailed
    subset of its training split. The LDAM-DRW recipe: class ``i`` (label
    order, class 0 is the head) keeps
    ``n_i = int(img_max * (1 / imbalance_ratio) ** (i / (C - 1)))`` images,
    ``img_max`` = training images / ``C`` (5,000 for CIFAR-10), drawn class
    by class after ``np.random.RandomState(seed)`` shuffles that class's
    indices (the sequence of ``np.random.seed(0)`` + ``np.random.shuffle``).
    ``imbalance_ratio`` 100 / 50 / 10 keeps 12,406 / 13,996 / 20,431 images.
    The test split is the balanced 10,000; its ``cls_num_list`` is still the
    long-tailed training counts. Class names come from the meta file
    (``batches.meta``) unless given.

    Images are HWC uint8 arrays in ``img`` in **BGR** order, the order of
    ``LoadImageFromFile`` (OpenCV decoding), so one ``data_preprocessor``
    (``to_rgb=True``) serves these images, image files, and inference on
    image files alike; start the pipeline without ``LoadImageFromFile``.
    (MMPretrain's ``CIFAR10`` yields RGB and its CIFAR configs set
    ``to_rgb=False``: a model trained so swaps red and blue on image files.)

    Args:
        data_root (str): Directory holding ``cifar-10-batches-py/``.
            Defaults to ''.
        split (str): 'train' or 'test'. Defaults to 'train'.
        imbalance_ratio (float): Head count / tail count ``rho``.
            Defaults to 100.
        seed (int): Seed of the per-class shuffle. Defaults to 0.
        metainfo (dict, optional): Meta information, e.g. ``classes``.
            Defaults to None (class names from the meta file).
        download (bool): Download and extract the archive when files are
            missing (MMPretrain's ``CIFAR10`` behaviour). Defaults to False.
        data_prefix (str): Directory holding ``cifar-10-batches-py/``,
            relative to ``data_root`` unless absolute. Defaults to ''.
        test_mode (bool): ``test_mode`` of ``BaseDataset``. Defaults to
            False.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            (``pipeline``, ``indices``, ...).
    """

    # Class names from the meta file, not MMPretrain's built-in list.
    METAINFO: dict = {}
    num_classes: int = 10

    def __init__(self,
                 data_root: str = '',
                 split: str = 'train',
                 imbalance_ratio: float = 100.,
                 seed: int = 0,
                 metainfo: Optional[dict] = None,
                 download: bool = False,
                 data_prefix: str = '',
                 test_mode: bool = False,
                 **kwargs) -> None:
        name = type(self).__name__
        splits = ('train', 'test')
        if split not in splits:
            raise ValueError(
                f"{name}: split must be one of {splits}, got '{split}'.")
        if not data_root and not data_prefix:
            raise ValueError(
                f'{name}: set `data_root` to the directory that holds '
                f'{self.base_folder}/ (extract {self.url} there).')
        if imbalance_ratio < 1:
            raise ValueError(
                f'{name}: imbalance_ratio (head count / tail count) must be '
                f'>= 1, got {imbalance_ratio}; the paper uses 100, 50 and 10.')
        self.imbalance_ratio = imbalance_ratio
        self.seed = seed
        self._files_verified = False
        super().__init__(
            data_root=data_root,
            split=split,
            metainfo=metainfo,
            download=download,
            data_prefix=data_prefix,
            test_mode=test_mode,
            **kwargs)

    def _check_integrity(self) -> bool:
        """MMPretrain's check (every file there, md5 sums as released),
        run once, with an error naming the files when nothing will be
        downloaded."""
        if self._files_verified:
            return True
        folder = join_path(self.data_prefix['root'], self.base_folder)
        entries = self.train_list + self.test_list + [[
            self.meta['filename'], self.meta.get('md5')
        ]]
        paths = [(join_path(folder, f), md5) for f, md5 in entries]
        missing = [p for p, _ in paths if not exists(p)]
        corrupt = [] if missing else [
            p for p, md5 in paths if md5 is not None and not check_md5(p, md5)
        ]
        if not missing and not corrupt:
            self._files_verified = True
            return True
        if self.download:
            return False  # MMPretrain's CIFAR10 downloads, then checks again
        name, files = type(self).__name__, ','.join(f for f, _ in entries)
        if missing:
            raise FileNotFoundError(
                f'{name}: missing {", ".join(missing)}. Download {self.url} '
                f"and extract it into data_root ('{self.data_prefix['root']}'"
                f'), which then holds {self.base_folder}/{{{files}}}. Nothing '
                'is downloaded unless download=True.')
        raise ValueError(
            f'{name}: {", ".join(corrupt)} differ from the released files '
            f'(md5 sum); download {self.url} again and extract it into '
            'data_root.')

    def _load_meta(self) -> None:
        """MMPretrain's meta file reading; class names as a tuple of str."""
        super()._load_meta()
        self._metainfo['classes'] = tuple(
            str(c) for c in self._metainfo['classes'])

    def _load_split(self, split: str) -> List[dict]:
        """One split as MMPretrain's loading gives it: ``img`` (32, 32, 3)
        RGB and ``gt_label``, in file order."""
        current, self.split = self.split, split
        try:
            return super().load_data_list()
        finally:
            self.split = current

    def _lt_indices(self, labels: np.ndarray) -> List[np.ndarray]:
        """Indices of the long-tailed training subset, one array per
        class."""
        img_max = len(labels) / self.num_classes
        img_num_per_cls = exponential_profile(img_max, self.num_classes,
                                              self.imbalance_ratio)
        rng = np.random.RandomState(self.seed)
        selected = []
        for cls, num in enumerate(img_num_per_cls):
            idx = np.where(labels == cls)[0]
            rng.shuffle(idx)
            selected.append(idx[:num])
        return selected

    def load_data_list(self) -> List[dict]:
        """Load the split (BGR), the long-tailed training counts and the
        class names."""
        train = self._load_split('train')
        labels = np.array([d['gt_label'] for d in train], dtype=np.int64)
        count_labels(
            labels,
            self.num_classes,
            source=f'{type(self).__name__}: the training pickles of '
            f"{self.data_prefix['root']}")
        selected = self._lt_indices(labels)
        self._set_cls_num_list([len(s) for s in selected])

        if self.split == 'train':
            data_list = [train[i] for i in np.concatenate(selected)]
        else:
            del train
            data_list = self._load_split('test')
        for info in data_list:
            info['img'] = np.ascontiguousarray(info['img'][..., ::-1])
        return data_list

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return super().extra_repr() + [
            f'Split: \t{self.split}',
            f'Imbalance ratio: \t{self.imbalance_ratio}',
        ]
