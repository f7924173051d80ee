"""Decode every image of a config's data sets, in parallel, and list the bad
ones with the fix."""
import copy
from multiprocessing import Pool
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS

from lpt_mmpretrain.datasets.transforms.checked_loading import (
    FIX, ImageDecodeError, decode_image)

__all__ = ['collect_images', 'find_bad_images', 'verify_config']

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
_LOADERS = ('LoadImageFromFile', 'CheckedLoadImageFromFile')


def _loader_args(pipeline: Sequence) -> dict:
    """Decoding settings of the pipeline's loading transform."""
    for t in pipeline or ():
        if str(t.get('type', '')).split('.')[-1] in _LOADERS:
            return dict(
                backend=t.get('imdecode_backend', 'cv2'),
                color_type=t.get('color_type', 'color'),
                backend_args=t.get('backend_args'))
    return dict(backend='cv2', color_type='color', backend_args=None)


def collect_images(cfg: Config) -> Tuple[Dict[str, dict], List[str]]:
    """The images of the config's training, validation and test data sets.

    Returns:
        tuple: ``{path: dict(splits=[...], ann_files=[...], **decode
        settings)}`` and the names of the splits that hold no image files
        (data sets that keep their images in memory).
    """
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    images: Dict[str, dict] = {}
    in_memory = []
    seen = set()
    for field in DATALOADERS:
        loader = cfg.get(field)
        if not loader or 'dataset' not in loader:
            continue
        ds_cfg = copy.deepcopy(loader['dataset'])
        key = repr(ds_cfg)
        if key in seen:  # test_dataloader = val_dataloader
            continue
        seen.add(key)
        decode = _loader_args(ds_cfg.get('pipeline'))
        ds_cfg['pipeline'] = []
        try:  # missing files are reported as bad, not raised at build
            dataset = DATASETS.build(dict(ds_cfg, check_files=False))
        except TypeError:
            dataset = DATASETS.build(ds_cfg)
        split = field.replace('_dataloader', '')
        ann = getattr(dataset, 'ann_file', '') or ''
        paths = [
            dataset.get_data_info(i).get('img_path')
            for i in range(len(dataset))
        ]
        if not any(paths):
            in_memory.append(split)
            continue
        for p in paths:
            entry = images.setdefault(p,
                                      dict(splits=[], ann_files=[], **decode))
            entry['splits'].append(split)
            if ann and ann not in entry['ann_files']:
                entry['ann_files'].append(ann)
    return images, in_memory


def _check(item: Tuple[str, dict]) -> Optional[Tuple[str, str]]:
    path, args = item
    try:
        decode_image(path, args['backend'], args['color_type'],
                     args['backend_args'])
    except ImageDecodeError as e:
        return path, e.reason
    return None


def find_bad_images(images: Dict[str, dict],
                    workers: int = 1) -> List[Tuple[str, str]]:
    """Decode every image; ``(path, reason)`` of each bad one, sorted."""
    items = [(p, {
        k: a[k]
        for k in ('backend', 'color_type', 'backend_args')
    }) for p, a in images.items()]
    if workers > 1:
        with Pool(workers) as pool:
            results = list(pool.imap_unordered(_check, items, chunksize=32))
    else:
        results = [_check(i) for i in items]
    return sorted(r for r in results if r is not None)


def verify_config(config: Union[str, Config],
                  workers: int = 1,
                  out: Optional[str] = None) -> Tuple[int, str]:
    """Verify a config's (file or object) images; write the bad ones to
    ``out`` (``path<TAB>reason`` lines).

    Returns:
        tuple: The number of bad images and the report text.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    images, in_memory = collect_images(cfg)
    bad = find_bad_images(images, workers)
    lines = []
    for split in in_memory:
        lines.append(f'{split}: the data set keeps its images in memory; '
                     'nothing to decode.')
    lines.append(f'Decoded {len(images)} images with {workers} worker(s): '
                 f'{len(bad)} bad.')
    for path, reason in bad:
        info = images[path]
        where = ', '.join(info['ann_files']) or ', '.join(info['splits'])
        lines.append(f'BAD {path}: {reason} (listed in {where})')
    if bad:
        if out:
            with open(out, 'w') as f:
                f.writelines(f'{p}\t{r}\n' for p, r in bad)
            lines.append(f'The list (path<TAB>reason) is in {out}.')
        lines.append(
            FIX.replace(
                'Run `python tools/misc/verify_dataset.py CONFIG` to list '
                'every bad image of the data set; c', 'Fix: c'))
    return len(bad), '\n'.join(lines)
