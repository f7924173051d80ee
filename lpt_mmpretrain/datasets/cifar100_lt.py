from mmpretrain.datasets import CIFAR100
from mmpretrain.registry import DATASETS

from .cifar10_lt import CIFAR10LT

__all__ = ['CIFAR100LT']


@DATASETS.register_module()
class CIFAR100LT(CIFAR10LT, CIFAR100):
    """CIFAR-100-LT: the exponential long-tailed subset of CIFAR-100.

    :class:`CIFAR10LT` on MMPretrain's :class:`~mmpretrain.datasets.CIFAR100`
    files (``cifar-100-python/{train,test,meta}`` under
    ``data_root``/``data_prefix``, fine labels), as ``CIFAR100`` is
    ``CIFAR10`` on them. The LDAM-DRW recipe: class ``i`` keeps
    ``n_i = int(500 * (1 / imbalance_ratio) ** (i / 99))`` training images;
    ``imbalance_ratio`` 100 / 50 / 10 keeps 10,847 / 12,608 / 19,573. The
    test split is the balanced 10,000, with the long-tailed training counts
    in ``cls_num_list``. Images are BGR, like those of ``LoadImageFromFile``
    (see :class:`CIFAR10LT`); class names come from the ``meta`` file.

    Args:
        data_root (str): Directory holding ``cifar-100-python/``. Defaults
            to ''.
        split (str): 'train' or 'test'. Defaults to 'train'.
        imbalance_ratio (float): Head count / tail count ``rho``.
            Defaults to 100.
        seed (int): Seed of the per-class shuffle. Defaults to 0.
        metainfo (dict, optional): Meta information, e.g. ``classes``.
            Defaults to None (class names from the ``meta`` file).
        download (bool): Download when files are missing. Defaults to False.
        data_prefix (str): Directory holding ``cifar-100-python/``, relative
            to ``data_root`` unless absolute. Defaults to ''.
        test_mode (bool): ``test_mode`` of ``BaseDataset``. Defaults to
            False.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            (``pipeline``, ``indices``, ...).
    """

    num_classes: int = 100
