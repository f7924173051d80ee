"""Reading checkpoint files into flat state dicts.

:func:`load_state_dict_file` reads every file LPT loads weights from (our
checkpoints, MMPretrain's, timm's ``.pth`` / ``.bin`` / ``.safetensors``);
:func:`load_clip_state_dict` also reads OpenAI's TorchScript CLIP files;
:func:`resolve_checkpoint_path` turns a work dir into its last checkpoint.
"""
import os.path as osp
import zipfile
from typing import Dict, Optional, Tuple

import torch
from mmengine.runner.checkpoint import _load_checkpoint

from .errors import wrong_file_kind
from .messages import message

__all__ = [
    'load_state_dict_file', 'load_clip_state_dict', 'resolve_checkpoint_path'
]

# Non-tensor entries of OpenAI's TorchScript files, read as tensors.
_OPENAI_EXTRAS = ('input_resolution', 'context_length', 'vocab_size')


def load_state_dict_file(filename: str,
                         map_location: Optional[str] = 'cpu'
                         ) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Read a checkpoint and return its flat state dict.

    ``.safetensors`` files are read with the ``safetensors`` package (through
    MMEngine's file backends, so remote paths work too); everything else goes
    through MMEngine's ``CheckpointLoader``, so every scheme it supports
    (local path, ``http(s)://``, ``open-mmlab://``, ...) works. A state dict
    nested under ``'state_dict'`` or ``'model'`` is unwrapped.

    Args:
        filename (str): Checkpoint path or URL.
        map_location (str, optional): Passed to ``torch.load``.
            Defaults to 'cpu'.

    Returns:
        tuple[dict, dict]: The state dict and the checkpoint's ``'meta'``
        (empty when there is none).
    """
    if str(filename).endswith('.npz'):
        raise wrong_file_kind(
            filename, 'is a JAX .npz checkpoint, which is not supported.',
            'Load it with timm (timm.create_model(name, pretrained=True, '
            "pretrained_cfg_overlay=dict(file=...))) and save its "
            'state_dict(), or use the .safetensors / .bin file of the model.')
    if str(filename).endswith('.safetensors'):
        from mmengine.fileio import get
        from safetensors.torch import load as load_safetensors
        checkpoint = load_safetensors(get(filename))
        if map_location not in (None, 'cpu'):
            checkpoint = {k: v.to(map_location) for k, v in checkpoint.items()}
    else:
        checkpoint = _load_checkpoint(
            filename, map_location=map_location, logger='current')
    if not isinstance(checkpoint, dict):
        raise wrong_file_kind(
            filename, f'holds a {type(checkpoint).__name__}, not a state '
            'dict or a checkpoint dict.')
    meta = checkpoint.get('meta', {})
    meta = meta if isinstance(meta, dict) else {}
    for wrapper in ('state_dict', 'model'):
        if isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
            break
    tensors = {k: v for k, v in checkpoint.items() if torch.is_tensor(v)}
    if not tensors:
        raise wrong_file_kind(
            filename, 'holds no tensors at the top level nor under '
            f"'state_dict' / 'model' (found keys {list(checkpoint)[:10]}).")
    return tensors, meta


def load_clip_state_dict(filename: str) -> Dict[str, torch.Tensor]:
    """Read a CLIP checkpoint into a flat state dict.

    OpenAI's ``ViT-B-16.pt`` is a TorchScript archive, read with
    ``torch.jit.load`` (as OpenAI's and open_clip's loaders do); open_clip's
    ``.bin`` / ``.pt`` / ``.safetensors`` files and training checkpoints
    (under ``'state_dict'``, DDP ``module.`` prefix) are read as state dicts.

    Args:
        filename (str): Checkpoint path.

    Returns:
        dict: ``name -> tensor``, without a ``module.`` prefix.
    """
    if _is_torchscript(filename):
        state_dict = dict(
            torch.jit.load(filename, map_location='cpu').state_dict())
    else:
        state_dict, _ = load_state_dict_file(filename, map_location='cpu')
    if state_dict and all(k.startswith('module.') for k in state_dict):
        state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}
    for key in _OPENAI_EXTRAS:
        state_dict.pop(key, None)
    return state_dict


def _is_torchscript(filename: str) -> bool:
    if not zipfile.is_zipfile(filename):
        return False
    with zipfile.ZipFile(filename) as archive:
        return any(
            name.split('/', 1)[-1] == 'constants.pkl'
            for name in archive.namelist())


def resolve_checkpoint_path(path: str) -> str:
    """Turn a work dir into the checkpoint its ``last_checkpoint`` names.

    Args:
        path (str): A checkpoint file, or a work dir written by MMEngine's
            ``CheckpointHook``.

    Returns:
        str: The checkpoint file.
    """
    if osp.isdir(path):
        pointer = osp.join(path, 'last_checkpoint')
        if not osp.isfile(pointer):
            raise FileNotFoundError(message('no_last_checkpoint', path=path))
        with open(pointer) as f:
            path = f.read().strip()
    if '://' not in path and not osp.isfile(path):
        raise FileNotFoundError(message('phase1_missing', path=path))
    return path
