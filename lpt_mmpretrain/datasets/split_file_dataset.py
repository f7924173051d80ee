from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.fileio import exists, get_file_backend, get_text

from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS
from .long_tail_mixin import LongTailMixin

__all__ = ['SplitFileLTDataset']


def check_image_files(dataset_name: str, img_paths: Sequence[str],
                      ann_file: str) -> None:
    """Raise a ``FileNotFoundError`` naming the missing images, if any.

    Args:
        dataset_name (str): Name of the data set, for the message.
        img_paths (Sequence[str]): Full paths of the images.
        ann_file (str): The annotation file that lists them.
    """
    if not img_paths:
        return
    backend = get_file_backend(img_paths[0], enable_singleton=True)
    missing = [p for p in img_paths if not backend.exists(p)]
    if missing:
        shown = ', '.join(repr(p) for p in missing[:3])
        more = ', ...' if len(missing) > 3 else ''
        raise FileNotFoundError(
            f'{dataset_name}: {len(missing)} of {len(img_paths)} images '
            f'listed in {ann_file} do not exist: {shown}{more}. Images are '
            'looked up as data_root/data_prefix/<path in the annotation>; '
            'check `data_root` and `data_prefix` (or pass '
            '`check_files=False` to skip this check).')


@DATASETS.register_module()
class SplitFileLTDataset(LongTailMixin, BaseDataset):
    """A long-tailed data set listed in a split file.

    Every non-blank line of the split file is ``relative/path label``
    (``ImageNet_LT_train.txt`` / ``Places_LT_train.txt`` style); the path is
    everything before the last whitespace, so it may contain spaces, and
    the image is ``data_root/data_prefix/relative/path``. Labels are
    integers in ``[0, num_classes)``.

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
        metainfo (dict, optional): Meta information. Defaults to None.
        pipeline (Sequence): Processing pipeline, starting with
            ``LoadImageFromFile``. Defaults to ().
        test_mode (bool): ``test_mode`` of ``BaseDataset``. Defaults to
            False.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`.
    """

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 data_prefix: Union[str, dict] = '',
                 num_classes: Optional[int] = None,
                 train_ann_file: Optional[str] = None,
                 classes: Union[str, Sequence[str], None] = None,
                 check_files: bool = True,
                 metainfo: Optional[dict] = None,
                 pipeline: Sequence = (),
                 test_mode: bool = False,
                 **kwargs) -> None:
        name = type(self).__name__
        if not ann_file:
            raise ValueError(
                f'{name}: `ann_file` is required: the split file of '
                '`relative/path label` lines (e.g. Places_LT_train.txt).')
        if num_classes is not None and num_classes < 1:
            raise ValueError(
                f'{name}: num_classes must be >= 1, got {num_classes}.')
        self.num_classes = num_classes
        self.train_ann_file = self._resolve_train_ann_file(
            train_ann_file, data_root)
        self.check_files = check_files
        super().__init__(
            ann_file=ann_file,
            metainfo=metainfo,
            data_root=data_root,
            data_prefix=data_prefix,
            pipeline=pipeline,
            test_mode=test_mode,
            classes=classes,
            **kwargs)

    def _parse_split_file(
            self,
            path: str,
            num_classes: Optional[int] = None) -> List[Tuple[str, int]]:
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

    def load_data_list(self) -> List[dict]:
        """Read the split file, the training counts and check the images."""
        num_classes = self.num_classes
        if num_classes is None and self.CLASSES is not None:
            num_classes = len(self.CLASSES)

        train_records = None
        if self.train_ann_file is not None:
            train_records = self._parse_split_file(self.train_ann_file,
                                                   num_classes)
            if num_classes is None:
                num_classes = max(label for _, label in train_records) + 1
        records = self._parse_split_file(self.ann_file, num_classes)
        if train_records is None:
            train_records, count_source = records, self.ann_file
        else:
            count_source = self.train_ann_file
        if num_classes is None:
            num_classes = max(label for _, label in train_records) + 1

        counts = np.bincount([label for _, label in train_records],
                             minlength=num_classes)
        self._set_cls_num_list(counts.tolist(), source=count_source)

        backend = get_file_backend(self.img_prefix, enable_singleton=True)
        data_list = [{
            'img_path': backend.join_path(self.img_prefix, rel_path),
            'gt_label': label
        } for rel_path, label in records]
        if self.check_files:
            check_image_files(
                type(self).__name__, [d['img_path'] for d in data_list],
                self.ann_file)
        return data_list

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        body = super().extra_repr()
        if self.train_ann_file is not None:
            body.append(f'Training split file: \t{self.train_ann_file}')
        return body
