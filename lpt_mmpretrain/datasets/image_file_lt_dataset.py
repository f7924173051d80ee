import os
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Sequence, Tuple, Union

from mmengine import dist
from mmengine.fileio import exists, get_file_backend
from mmpretrain.datasets import BaseDataset

from ..checks import check_min
from .class_counts import count_labels
from .long_tail_mixin import LongTailMixin

__all__ = ['ImageFileLTDataset', 'check_image_files']

#: (class names or None, [(path relative to the image prefix, label)])
ParsedAnnotation = Tuple[Optional[List[str]], List[Tuple[str, int]]]


def _missing_files(img_paths: Sequence[str], num_threads: int) -> List[str]:
    """The paths that do not exist, looked up by ``num_threads`` threads
    (a stat is I/O-bound: threads overlap the waits of network storage)."""
    if not img_paths:
        return []
    backend = get_file_backend(img_paths[0], enable_singleton=True)
    with ThreadPoolExecutor(max_workers=num_threads) as pool:
        found = list(
            pool.map(
                backend.exists,
                img_paths,
                chunksize=max(1,
                              len(img_paths) // (16 * num_threads))))
    return [p for p, ok in zip(img_paths, found) if not ok]


def check_image_files(dataset_name: str,
                      img_paths: Sequence[str],
                      ann_file: str,
                      num_threads: Optional[int] = None) -> None:
    """Raise a ``FileNotFoundError`` naming the missing images, if any.

    Only rank 0 looks the files up (in parallel); in a distributed run it
    sends the missing paths to the other ranks, so every rank raises the same
    error instead of each statting every file.

    Args:
        dataset_name (str): Name of the data set, for the message.
        img_paths (Sequence[str]): Full paths of the images.
        ann_file (str): The annotation file that lists them.
        num_threads (int, optional): Threads looking files up. Defaults to
            None: ``min(32, 4 * CPU count)``.
    """
    if num_threads is None:
        num_threads = min(32, 4 * (os.cpu_count() or 1))
    missing = _missing_files(img_paths, num_threads) \
        if dist.is_main_process() else None
    if dist.get_world_size() > 1:
        shared = [missing]
        dist.broadcast_object_list(shared, src=0)
        missing = shared[0]
    if missing:
        shown = ', '.join(repr(p) for p in missing[:3])
        more = ', ...' if len(missing) > 3 else ''
        raise FileNotFoundError(
            f'{dataset_name}: {len(missing)} of {len(img_paths)} images '
            f'listed in {ann_file} do not exist: {shown}{more}. Images are '
            'looked up as data_root/data_prefix/<path in the annotation>; '
            'check `data_root` and `data_prefix` (or pass '
            '`check_files=False` to skip this check).')


class ImageFileLTDataset(LongTailMixin, BaseDataset):
    """Base of the long-tailed data sets of image files listed in an
    annotation file (split files, COCO-style JSON).

    A subclass implements :meth:`_parse`, which reads one annotation file;
    this class resolves the paths, takes the class counts from the training
    annotation, names the classes and checks that the images exist.

    ``metainfo['cls_num_list']`` holds the per-class counts of the training
    split: those of ``ann_file`` itself when ``train_ann_file`` is None (the
    data set is the training split), else those of ``train_ann_file``.

    Args:
        ann_file (str): The annotation file, relative to ``data_root``
            unless absolute.
        data_root (str): Root of ``ann_file``, ``train_ann_file`` and
            ``data_prefix``. Defaults to ''.
        data_prefix (str | dict): Directory of the images, relative to
            ``data_root`` unless absolute. Defaults to ''.
        num_classes (int, optional): Number of classes. Defaults to None:
            the class's ``default_num_classes``, else the number of class
            names (given or in the annotation), else the largest label of
            the training annotation + 1.
        train_ann_file (str, optional): The training annotation, read for
            the class counts of a validation / test split. Defaults to None.
        classes (str | Sequence[str], optional): Class names in label order,
            or a file with one name per line. Defaults to None (the names in
            the annotation, if it has any).
        check_files (bool): Check at build time that every listed image
            exists. Defaults to True.
        metainfo (dict, optional): Meta information. Defaults to None.
        pipeline (Sequence): Processing pipeline, starting with the image
            loader. Defaults to ().
        test_mode (bool): ``test_mode`` of ``BaseDataset``. Defaults to
            False.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`.
    """

    #: Used when ``num_classes`` is None (e.g. 365 for Places-LT).
    default_num_classes: Optional[int] = None
    #: What ``ann_file`` is, for the error when it is missing.
    ann_file_help: str = 'the annotation file'

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
                f'{name}: `ann_file` is required: {self.ann_file_help}.')
        if num_classes is None:
            num_classes = self.default_num_classes
        if num_classes is not None:
            check_min('num_classes', num_classes, 1, prefix=f'{name}: ')
        if isinstance(classes,
                      str) and not exists(os.path.expanduser(classes)):
            raise FileNotFoundError(
                f'{name}: the class-name file {classes!r} (`classes`) does '
                'not exist. Give a text file with one class name per line, '
                'in label order, or a list of names, or None.')
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

    def _parse(self, path: str,
               num_classes: Optional[int]) -> ParsedAnnotation:
        """Read one annotation file.

        Args:
            path (str): The file.
            num_classes (int, optional): Labels must be below it, if given.

        Returns:
            tuple: The class names in label order (None if the file has
            none), and ``(relative image path, label)`` in file order.
        """
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        """Read the annotations and the training counts, name the classes
        and check the images."""
        name = type(self).__name__
        num_classes = self.num_classes
        if num_classes is None and self.CLASSES is not None:
            num_classes = len(self.CLASSES)

        train_names = train_records = None
        if self.train_ann_file is not None:
            train_names, train_records = self._parse(self.train_ann_file,
                                                     num_classes)
            if num_classes is None and train_names is None:
                num_classes = max(label for _, label in train_records) + 1
        names, records = self._parse(self.ann_file, num_classes)
        if train_records is None:
            train_names, train_records = names, records
            count_source = self.ann_file
        else:
            count_source = self.train_ann_file
            if train_names != names:
                raise ValueError(
                    f'{name}: {self.ann_file} and {self.train_ann_file} '
                    'define different categories ('
                    f'{len(names or ())} vs {len(train_names or ())}, or '
                    'different ids / names); `train_ann_file` must be the '
                    'training file of the same release.')
        if names is not None:
            if num_classes is not None and num_classes != len(names):
                raise ValueError(
                    f'{name}: {self.ann_file} defines {len(names)} classes '
                    f'but num_classes / classes give {num_classes}.')
            num_classes = len(names)
            if self.CLASSES is None:
                self._metainfo['classes'] = tuple(names)

        counts = count_labels([label for _, label in train_records],
                              num_classes,
                              source=f'{name}: {count_source}')
        self._set_cls_num_list(counts, source=count_source)

        backend = get_file_backend(self.img_prefix, enable_singleton=True)
        data_list = [{
            'img_path': backend.join_path(self.img_prefix, rel_path),
            'gt_label': label
        } for rel_path, label in records]
        if self.check_files:
            check_image_files(name, [d['img_path'] for d in data_list],
                              self.ann_file)
        return data_list

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        body = super().extra_repr()
        if self.train_ann_file is not None:
            body.append(f'Training annotation file: \t{self.train_ann_file}')
        return body
