from mmpretrain.registry import DATASETS

from .split_file_dataset import SplitFileLTDataset

__all__ = ['ImageNetLT']


@DATASETS.register_module()
class ImageNetLT(SplitFileLTDataset):
    """ImageNet-LT (Liu et al., OLTR, CVPR 2019): 1,000 classes, 115,846
    training (5 to 1,280 per class), 20,000 validation and 50,000 test images.

    Reads the OLTR split files (``ImageNet_LT_train.txt``,
    ``ImageNet_LT_val.txt``, ``ImageNet_LT_test.txt``) of
    ``relative/path label`` lines (e.g. ``train/n01440764/x.JPEG 0``); the
    images are those of ImageNet-1k, looked up as
    ``data_root/data_prefix/relative/path``.

    Examples:
        >>> # test split, with the class counts of the training split
        >>> dataset = ImageNetLT(
        ...     ann_file='ImageNet_LT_test.txt',
        ...     train_ann_file='ImageNet_LT_train.txt',
        ...     data_root='data/imagenet', pipeline=[...])

    Args:
        ann_file (str): The split file, relative to ``data_root`` unless
            absolute.
        data_root (str): Root of ``ann_file``, ``train_ann_file`` and
            ``data_prefix``. Defaults to ''.
        data_prefix (str | dict): Directory of the images, relative to
            ``data_root`` unless absolute. Defaults to ''.
        num_classes (int): Number of classes. Defaults to None
            (``default_num_classes`` = 1000).
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

    default_num_classes = 1000
