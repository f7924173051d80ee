"""Checks of a data set config before anything is built: every local path it
names (``data_root``, ``ann_file``, ``data_prefix``) must exist."""
import os.path as osp
from typing import Iterator, Tuple

__all__ = ['check_dataset_paths']

_FIX = ('Point the config at the folder that holds your data: '
        '`LPT_DATA_ROOT=PATH python tools/train.py ...` with the templates '
        'configs/lpt/*_own_data_*.py, or `--cfg-options '
        '{where}.data_root=PATH`; docs/own_data.md shows the expected '
        'layouts.')


def _named_paths(cfg: dict) -> Iterator[Tuple[str, str]]:
    """``(field, path)`` of the local paths a data set config names."""
    root = cfg.get('data_root') or ''
    if isinstance(root, str) and root:
        yield 'data_root', osp.expanduser(root)
    ann_file = cfg.get('ann_file') or ''
    if isinstance(ann_file, str) and ann_file:
        yield 'ann_file', osp.join(
            osp.expanduser(root),
            osp.expanduser(ann_file)) if root else osp.expanduser(ann_file)
    prefix = cfg.get('data_prefix') or ''
    if isinstance(prefix, dict):
        prefix = prefix.get('img_path') or prefix.get('img') or ''
    if isinstance(prefix, str) and prefix:
        yield 'data_prefix', osp.join(
            osp.expanduser(root),
            osp.expanduser(prefix)) if root else osp.expanduser(prefix)


def check_dataset_paths(cfg: dict, where: str) -> None:
    """Refuse a data set config naming a local path that does not exist.

    Wrappers (``dataset=`` / ``datasets=``) are checked through; URLs
    (``s3://...``) and configs without paths (the data sets of this package
    that make their data) pass.

    Args:
        cfg (dict): The data set config, e.g.
            ``cfg.train_dataloader.dataset``.
        where (str): Its place in the config, for the message.

    Raises:
        FileNotFoundError: Naming the field, the path and the fix.
    """
    if not isinstance(cfg, dict):
        return
    if isinstance(cfg.get('dataset'), dict):
        check_dataset_paths(cfg['dataset'], f'{where}.dataset')
    for i, sub in enumerate(cfg.get('datasets') or []):
        check_dataset_paths(sub, f'{where}.datasets[{i}]')
    for field, path in _named_paths(cfg):
        if '://' in path or osp.exists(path):
            continue
        raise FileNotFoundError(f'{where}.{field}: {path} does not exist '
                                f'({osp.abspath(path)}). ' +
                                _FIX.format(where=where))
