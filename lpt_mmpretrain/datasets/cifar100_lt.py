import pickle
from typing import Dict, List, Optional

import numpy as np
from mmengine.fileio import exists, get, join_path

from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS
from .long_tail_mixin import LongTailMixin, exponential_profile

__all__ = ['CIFAR100LT']


@DATASETS.register_module()
class CIFAR100LT(LongTailMixin, BaseDataset):
    """CIFAR-100-LT: the exponential long-tailed subset of CIFAR-100.

    Reads the python version of CIFAR-100 (``cifar-100-python/train``,
    ``test`` and ``meta`` under ``data_root``/``data_prefix``); it never
    downloads. The training split follows the LDAM-DRW recipe: class ``i``
    (label order, class 0 is the head) keeps
    ``n_i = int(img_max * (1 / imbalance_ratio) ** (i / 99))`` images,
    ``img_max`` = training images / 100 (500 for CIFAR-100), drawn class by
    class after ``np.random.RandomState(seed)`` shuffles that class's indices
    (same sequence as ``np.random.seed(0)`` + ``np.random.shuffle``).
    ``imbalance_ratio`` 100 / 50 / 10 keeps 10,847 / 12,608 / 19,573 images.
    The test split is the balanced 10,000; its ``cls_num_list`` is still the
    long-tailed training counts.

    Images are HWC uint8 RGB arrays in ``img`` (start the pipeline without
    ``LoadImageFromFile``, as with MMPretrain's ``CIFAR100``).

    Args:
        data_root (str): Directory holding ``cifar-100-python/``. Defaults
            to ''.
        split (str): 'train' or 'test'. Defaults to 'train'.
        imbalance_ratio (float): Head count / tail count ``rho``.
            Defaults to 100.
        seed (int): Seed of the per-class shuffle. Defaults to 0.
        metainfo (dict, optional): Meta information, e.g. ``classes``.
            Defaults to None (class names from the ``meta`` file).
        data_prefix (str): Directory holding ``cifar-100-python/``, relative
            to ``data_root`` unless absolute. Defaults to ''.
        test_mode (bool): ``test_mode`` of ``BaseDataset``. Defaults to
            False.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            (``pipeline``, ``indices``, ...).
    """

    base_folder = 'cifar-100-python'
    url = 'https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz'
    num_classes = 100

    def __init__(self,
                 data_root: str = '',
                 split: str = 'train',
                 imbalance_ratio: float = 100.,
                 seed: int = 0,
                 metainfo: Optional[dict] = None,
                 data_prefix: str = '',
                 test_mode: bool = False,
                 **kwargs) -> None:
        splits = ('train', 'test')
        if split not in splits:
            raise ValueError(
                f"CIFAR100LT: split must be one of {splits}, got '{split}'.")
        if not data_root and not data_prefix:
            raise ValueError(
                'CIFAR100LT: set `data_root` to the directory that holds '
                f'{self.base_folder}/ (extract {self.url} there).')
        if imbalance_ratio < 1:
            raise ValueError(
                'CIFAR100LT: imbalance_ratio (head count / tail count) must '
                f'be >= 1, got {imbalance_ratio}; the paper uses 100, 50 and '
                '10.')
        self.split = split
        self.imbalance_ratio = imbalance_ratio
        self.seed = seed
        super().__init__(
            ann_file='',
            metainfo=metainfo,
            data_root=data_root,
            data_prefix=dict(root=data_prefix),
            test_mode=test_mode,
            **kwargs)

    def _file(self, name: str) -> str:
        return join_path(self.data_prefix['root'], self.base_folder, name)

    def _load_pickle(self, name: str) -> Dict[str, object]:
        """Load one CIFAR pickle with ``str`` keys."""
        entry = pickle.loads(get(self._file(name)), encoding='latin1')
        return {
            k.decode() if isinstance(k, bytes) else k: v
            for k, v in entry.items()
        }

    def _load_split(self, name: str):
        """Images (N, 32, 32, 3) uint8 and fine labels (N, ) of a split."""
        entry = self._load_pickle(name)
        for key in ('data', 'fine_labels'):
            if key not in entry:
                raise KeyError(
                    f'CIFAR100LT: {self._file(name)} has no {key!r} entry; '
                    'it is not a CIFAR-100 python pickle. Extract '
                    f'{self.url} into data_root.')
        labels = np.asarray(entry['fine_labels'], dtype=np.int64)
        imgs = np.asarray(entry['data'], dtype=np.uint8)
        imgs = imgs.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # to HWC
        if len(imgs) != len(labels) or labels.min() < 0 or \
                labels.max() >= self.num_classes:
            raise ValueError(
                f'CIFAR100LT: {self._file(name)} has {len(imgs)} images, '
                f'{len(labels)} labels in [{labels.min()}, {labels.max()}]; '
                f'expected one label in [0, {self.num_classes}) per image.')
        return imgs, labels

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
        """Load the split, the long-tailed training counts and the class
        names."""
        names = ['train', 'test', 'meta']
        missing = [self._file(n) for n in names if not exists(self._file(n))]
        if missing:
            raise FileNotFoundError(
                f'CIFAR100LT: missing {", ".join(missing)}. Download '
                f'{self.url} and extract it into data_root '
                f"('{self.data_prefix['root']}'), which then holds "
                f'{self.base_folder}/{{train,test,meta}}. Nothing is '
                'downloaded automatically.')

        if self.CLASSES is None:
            meta = self._load_pickle('meta')
            if 'fine_label_names' not in meta:
                raise KeyError(
                    f"CIFAR100LT: {self._file('meta')} has no "
                    f"'fine_label_names' entry; extract {self.url} again.")
            self._metainfo['classes'] = tuple(
                n.decode() if isinstance(n, bytes) else str(n)
                for n in meta['fine_label_names'])

        train_imgs, train_labels = self._load_split('train')
        selected = self._lt_indices(train_labels)
        self._set_cls_num_list([len(s) for s in selected])

        if self.split == 'train':
            keep = np.concatenate(selected)
            imgs, labels = train_imgs[keep], train_labels[keep]
        else:
            del train_imgs
            imgs, labels = self._load_split('test')
        return [{
            'img': img,
            'gt_label': int(label)
        } for img, label in zip(imgs, labels)]

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return [
            f"Prefix of data: \t{self.data_prefix['root']}",
            f'Split: \t{self.split}',
            f'Imbalance ratio: \t{self.imbalance_ratio}',
        ]
