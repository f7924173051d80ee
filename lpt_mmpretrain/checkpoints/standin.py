"""The shipped tiny-ViT stand-in for large-scale pretraining (CPU demo).

The DigitsLT and DigitPairsLT configs freeze a tiny ViT pretrained on single
digits (``configs/lpt/digits_pretrain_vit_tiny.py``). Retraining it gives
other weights on every processor (float rounding in a short run), and every
result after it moves, so it was trained once and ships with the package:
``standins/<name>.pth`` holds its ``state_dict`` and ``standins/<name>.json``
its sha256 checksum, training config and command.

Configs name it ``standin://<name>``, a scheme of MMEngine's
``CheckpointLoader``: every loader (``init_cfg``, ``load_checkpoint``,
``load_from``) reads the file only after checking its checksum.

Export a retrained stand-in (this rewrites the checksum)::

    python tools/model_converters/export_standin.py \\
        work_dirs/digits_pretrain_vit_tiny/epoch_30.pth
"""
import hashlib
import json
import os.path as osp
from typing import Any, Optional

import torch
from mmengine.runner import CheckpointLoader

from .messages import message

__all__ = [
    'STANDIN_DIR', 'STANDIN_SCHEME', 'standin_files', 'file_sha256',
    'load_from_standin', 'export_standin'
]

STANDIN_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'standins')
STANDIN_SCHEME = 'standin://'
PRETRAIN_CONFIG = 'configs/lpt/digits_pretrain_vit_tiny.py'


def standin_files(name: str, directory: str = STANDIN_DIR) -> tuple:
    """``(weights .pth, record .json)`` of the stand-in ``name``."""
    return (osp.join(directory,
                     f'{name}.pth'), osp.join(directory, f'{name}.json'))


def file_sha256(path: str) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _how_to_make(name: str) -> str:
    pth, record = (osp.relpath(p) for p in standin_files(name))
    return message(
        'standin_remedy', pth=pth, json=record, config=PRETRAIN_CONFIG)


def load_from_standin(filename: str,
                      map_location: Optional[Any] = None) -> Any:
    """Load ``standin://<name>`` after verifying its sha256 checksum.

    Args:
        filename (str): ``standin://<name>``.
        map_location (optional): Same as in :func:`torch.load`.

    Returns:
        The checkpoint (``{'state_dict': ..., 'meta': ...}``).
    """
    name = filename[len(STANDIN_SCHEME):]
    pth, record = standin_files(name)
    if not osp.isfile(pth) or not osp.isfile(record):
        missing = pth if not osp.isfile(pth) else record
        raise FileNotFoundError(
            message(
                'standin_missing',
                uri=filename,
                path=missing,
                remedy=_how_to_make(name)))
    with open(record) as f:
        expected = json.load(f)['sha256']
    actual = file_sha256(pth)
    if actual != expected:
        raise ValueError(
            message(
                'standin_changed',
                uri=filename,
                path=pth,
                actual=actual,
                record=record,
                expected=expected,
                remedy=_how_to_make(name)))
    return CheckpointLoader.load_checkpoint(pth, map_location=map_location)


CheckpointLoader.register_scheme(
    prefixes=STANDIN_SCHEME, loader=load_from_standin, force=True)


def export_standin(checkpoint: str,
                   name: str = 'digits_vit_tiny',
                   directory: str = STANDIN_DIR,
                   config: str = PRETRAIN_CONFIG) -> dict:
    """Write a training checkpoint's weights as the stand-in ``name``.

    Only ``state_dict`` is kept (no optimizer state, no message hub); the
    record gets its sha256, the config and the source checkpoint.

    Args:
        checkpoint (str): A checkpoint of ``config``'s training run.
        name (str): Stand-in name. Defaults to 'digits_vit_tiny'.
        directory (str): Where to write. Defaults to :data:`STANDIN_DIR`.
        config (str): Its training config, recorded. Defaults to
            ``configs/lpt/digits_pretrain_vit_tiny.py``.

    Returns:
        dict: The record written to ``<name>.json``.
    """
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state_dict = ckpt.get('state_dict', ckpt)
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    pth, record_file = standin_files(name, directory)
    torch.save(
        {
            'state_dict': {
                k: v.clone()
                for k, v in state_dict.items()
            },
            'meta': {
                'epoch': meta.get('epoch'),
                'config': config
            }
        }, pth)
    record = dict(
        sha256=file_sha256(pth),
        config=config,
        epoch=meta.get('epoch'),
        seed=meta.get('seed'),
        source=osp.basename(checkpoint),
        command=f'python tools/train.py {config}',
        torch=torch.__version__,
        parameters=int(sum(v.numel() for v in state_dict.values())))
    with open(record_file, 'w') as f:
        json.dump(record, f, indent=2)
        f.write('\n')
    return record
