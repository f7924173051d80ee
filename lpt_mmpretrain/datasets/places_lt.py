from mmpretrain.registry import DATASETS

from .split_file_dataset import SplitFileLTDataset

__all__ = ['PlacesLT']


@DATASETS.register_module()
class PlacesLT(SplitFileLTDataset):
    """Places-LT (Liu et al., OLTR, CVPR 2019): 365 classes, 62,500 training,
    7,300 validation and 36,500 test images.

    Reads the OLTR split files (``Places_LT_train.txt``, ``Places_LT_val.txt``,
    ``Places_LT_test.txt``) of ``relative/path label`` lines; the images are
    those of Places365-Standard (256 x 256), looked up as
    ``data_root/data_prefix/relative/path``. LPT reports the test split.

    Examples:
        >>> # test split, with the class counts of the training split
        >>> dataset = PlacesLT(
        ...     ann_file='Places_LT_test.txt',
        ...     train_ann_file='Places_LT_train.txt',
        ...     data_root='data/places365', pipeline=[...])

    Args:
        ann_file (str): The split file, relative to ``data_root`` unless
            absolute.
        data_root (str): Root of ``ann_file``, ``train_ann_file`` and
            ``data_prefix``. Defaults to ''.
        data_prefix (str | dict): Directory of the images, relative to
            ``data_root`` unless absolute. Defaults to ''.
        num_classes (int): Number of classes. Defaults to None
            (``default_num_classes`` = 365).
        train_ann_file (str, optional): The training split file, read for
            the class counts of a validation / test split. Defaults to None
            (``ann_file`` is the training split).
        classes (str | Sequence[str], optional): Class names in label order,
            or a file with one name per line (the configs' ``class_names``).
            Defaults to None: predictions carry label indices only.
        check_files (bool): Check at build time that every listed image
            exists. Defaults to True.
        **kwargs: Other arguments of :class:`SplitFileLTDataset` and
            :class:`mmpretrain.datasets.BaseDataset`.
    """

    default_num_classes = 365
