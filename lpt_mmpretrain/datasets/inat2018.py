import json
from typing import Dict, Optional

from mmengine.fileio import exists, get_text
from mmpretrain.registry import DATASETS

from .image_file_lt_dataset import ImageFileLTDataset, ParsedAnnotation

__all__ = ['INat2018']

_REQUIRED_KEYS = {
    'images': ('id', 'file_name'),
    'annotations': ('image_id', 'category_id'),
    'categories': ('id', 'name'),
}


@DATASETS.register_module()
class INat2018(ImageFileLTDataset):
    """iNaturalist 2018: 8,142 classes, 437,513 training and 24,426
    validation images.

    Reads the COCO-style annotation files of the challenge
    (``train2018.json``, ``val2018.json``): ``images`` (``id``,
    ``file_name``), ``annotations`` (``image_id``, ``category_id``, one per
    image) and ``categories`` (``id``, ``name``). Labels are the categories
    sorted by id, mapped to ``0 .. K-1`` (the identity for iNat2018, whose
    ids are 0..8141); ``classes`` are the category names. Images are
    ``data_root/data_prefix/file_name``.

    ``metainfo['cls_num_list']`` holds the per-class counts of the training
    split: those of ``ann_file`` when ``train_ann_file`` is None, else those
    of ``train_ann_file``, which must define the same categories.

    Args:
        ann_file (str): The annotation JSON, relative to ``data_root``
            unless absolute.
        data_root (str): Root of ``ann_file``, ``train_ann_file`` and
            ``data_prefix``. Defaults to ''.
        data_prefix (str | dict): Directory that ``file_name`` is relative
            to, relative to ``data_root`` unless absolute. Defaults to ''.
        train_ann_file (str, optional): The training annotation JSON, read
            for the class counts of the validation split. Defaults to None.
        check_files (bool): Check at build time that every listed image
            exists. Defaults to True.
        **kwargs: Other arguments of :class:`ImageFileLTDataset`
            (``classes`` overrides the names, ``metainfo``, ``pipeline``,
            ``test_mode``) and :class:`mmpretrain.datasets.BaseDataset`.
    """

    ann_file_help = ('the COCO-style JSON of the split (train2018.json or '
                     'val2018.json)')

    def _parse(self, path: str,
               num_classes: Optional[int]) -> ParsedAnnotation:
        """Read and check one annotation file.

        Returns:
            tuple: The category names sorted by id, and the
            ``(file_name, label)`` of every image in file order.
        """
        if not exists(path):
            raise FileNotFoundError(
                f'INat2018: annotation file {path} not found. Give the path '
                'of train2018.json / val2018.json (relative to `data_root` '
                'unless absolute).')
        try:
            ann = json.loads(get_text(path))
        except json.JSONDecodeError as e:
            raise ValueError(
                f'INat2018: {path} is not valid JSON ({e}).') from None
        if not isinstance(ann, dict):
            raise ValueError(f'INat2018: {path} must hold a JSON object with '
                             f'{sorted(_REQUIRED_KEYS)}.')
        for section, keys in _REQUIRED_KEYS.items():
            if not isinstance(ann.get(section), list):
                raise ValueError(
                    f'INat2018: {path} has no list {section!r}; a '
                    f'COCO-style file needs {sorted(_REQUIRED_KEYS)}.')
            for i, entry in enumerate(ann[section]):
                if not isinstance(entry, dict) or any(k not in entry
                                                      for k in keys):
                    raise ValueError(
                        f'INat2018: {path}: {section}[{i}] = {entry!r} '
                        f'lacks one of the keys {keys}.')

        categories = sorted(
            (c['id'], str(c['name'])) for c in ann['categories'])
        cat_ids = [cid for cid, _ in categories]
        if len(set(cat_ids)) != len(cat_ids):
            raise ValueError(
                f'INat2018: {path} lists a category id more than once.')
        if not categories:
            raise ValueError(f'INat2018: {path} lists no category.')
        cat_to_label = {cid: label for label, cid in enumerate(cat_ids)}

        image_label: Dict[object, int] = {}
        file_names: Dict[object, str] = {}
        for img in ann['images']:
            if img['id'] in file_names:
                raise ValueError(f'INat2018: {path} lists the image id '
                                 f'{img["id"]!r} more than once.')
            file_names[img['id']] = img['file_name']
        for i, a in enumerate(ann['annotations']):
            if a['category_id'] not in cat_to_label:
                raise ValueError(
                    f'INat2018: {path}: annotations[{i}] has the category_id '
                    f'{a["category_id"]!r}, which is not in `categories`. '
                    'Fix the annotation or add the category.')
            if a['image_id'] not in file_names:
                raise ValueError(
                    f'INat2018: {path}: annotations[{i}] refers to the '
                    f'image_id {a["image_id"]!r}, which is not in `images`.')
            if a['image_id'] in image_label:
                raise ValueError(
                    f'INat2018: {path}: image {a["image_id"]!r} has more than '
                    'one annotation; each image needs exactly one label.')
            image_label[a['image_id']] = cat_to_label[a['category_id']]
        unlabelled = [i for i in file_names if i not in image_label]
        if unlabelled:
            raise ValueError(
                f'INat2018: {path}: {len(unlabelled)} images have no '
                f'annotation (e.g. image id {unlabelled[0]!r}); each image '
                'needs exactly one. The unlabelled test2018.json cannot be '
                'evaluated: use val2018.json.')
        if not file_names:
            raise ValueError(f'INat2018: {path} lists no image.')
        records = [(name, image_label[img_id])
                   for img_id, name in file_names.items()]
        return [name for _, name in categories], records
