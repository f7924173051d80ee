from typing import List, Optional, Tuple

from mmengine.fileio import exists, get_text
from mmpretrain.registry import DATASETS

from .image_file_lt_dataset import (ImageFileLTDataset, ParsedAnnotation,
                                    check_image_files)

__all__ = ['SplitFileLTDataset', 'check_image_files']


@DATASETS.register_module()
class SplitFileLTDataset(ImageFileLTDataset):
    """A long-tailed data set listed in a split file.

    Every non-blank line of the split file is ``relative/path label``
    (``ImageNet_LT_train.txt`` / ``Places_LT_train.txt`` style); the path is
    everything before the last whitespace, so it may contain spaces, and
    the image is ``data_root/data_prefix/relative/path``. Labels are
    integers in ``[0, num_classes)``. Split files carry no class names:
    give them with ``classes`` (a list, or a file with one name per line).

    ``metainfo['cls_num_list']`` holds the per-class counts of the training
    split: those of ``ann_file`` itself when ``train_ann_file`` is None (the
    data set is the training split), else those of ``train_ann_file``.

    Args:
        ann_file (str): The split file, relative to ``data_root`` unless
            absolute.
        data_root (str): Root of ``ann_file``, ``train_ann_file`` and
            ``data_prefix``. Defaults to ''.
        data_prefix (str | dict): Directory of the images, relative to
            ``data_root`` unless absolute. Defaults to ''.
        num_classes (int, optional): Number of classes. Defaults to None:
            the number of ``classes`` if given, else the largest label of
            the training split file + 1.
        train_ann_file (str, optional): The training split file, read for
            the class counts of a validation / test split. Defaults to None.
        classes (str | Sequence[str], optional): Class names in label order,
            or a file with one name per line. Defaults to None.
        check_files (bool): Check at build time that every listed image
            exists. Defaults to True.
        **kwargs: Other arguments of :class:`ImageFileLTDataset`
            (``metainfo``, ``pipeline``, ``test_mode``) and
            :class:`mmpretrain.datasets.BaseDataset`.
    """

    ann_file_help = ('the split file of `relative/path label` lines (e.g. '
                     'Places_LT_train.txt)')

    def _parse(self, path: str,
               num_classes: Optional[int]) -> ParsedAnnotation:
        """No class names, and the ``(relative path, label)`` pairs."""
        return None, self._parse_split_file(path, num_classes)

    def _parse_split_file(self,
                          path: str,
                          num_classes: Optional[int] = None
                          ) -> List[Tuple[str, int]]:
        """Read ``(relative path, label)`` pairs from a split file."""
        name = type(self).__name__
        fix = 'each line must be `relative/path label`, label an integer'
        if not exists(path):
            raise FileNotFoundError(
                f'{name}: split file {path} not found. Give its path '
                '(relative to `data_root` unless absolute); ' + fix + '.')
        records = []
        for lineno, line in enumerate(get_text(path).splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            parts = line.rsplit(maxsplit=1)
            if len(parts) < 2:
                raise ValueError(f'{name}: {path}, line {lineno}: {line!r} '
                                 f'has no label; {fix}.')
            try:
                label = int(parts[1])
            except ValueError:
                raise ValueError(
                    f'{name}: {path}, line {lineno}: the label {parts[1]!r} '
                    f'is not an integer; {fix}.') from None
            if label < 0 or (num_classes is not None and label >= num_classes):
                upper = '' if num_classes is None else f', {num_classes}'
                raise ValueError(
                    f'{name}: {path}, line {lineno}: label {label} is out '
                    f'of range [0{upper}). Check the file, or '
                    '`num_classes` / `classes`.')
            records.append((parts[0], label))
        if not records:
            raise ValueError(
                f'{name}: split file {path} lists no image; {fix}.')
        return records
