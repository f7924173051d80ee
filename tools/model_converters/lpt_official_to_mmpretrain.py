"""Convert the released LPT Places-LT checkpoint (DongSky/LPT) to ours.

Usage::

    python tools/model_converters/lpt_official_to_mmpretrain.py SRC DST \
        [--config configs/lpt/phase2_places_official.py]

SRC is the released phase-2 file (``{'state_dict': ...}`` from
``nn.DataParallel``). DST receives a full LPTClassifier checkpoint for the
config's model, and ``<DST stem>_prompts.pth`` next to it a prompt-only one
(its frozen backbone is DST's). Then::

    python tools/test.py configs/lpt/phase2_places_official.py DST
"""
import argparse
import copy
import os.path as osp
import pickle
from typing import Dict, List, Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

from lpt_mmpretrain.checkpoints import (atomic_torch_save,
                                        convert_official_state_dict,
                                        prompt_only_path,
                                        save_prompt_checkpoint)
from lpt_mmpretrain.engine.compat.checkpoint import _refused_name

DEFAULT_CONFIG = 'configs/lpt/phase2_places_official.py'
# Non-tensor objects the released training script may pickle next to the
# state dict (its argparse arguments). Allow-listed for this loader only.
OFFICIAL_SAFE_GLOBALS = [argparse.Namespace]


def load_official_checkpoint(filename: str) -> Dict[str, torch.Tensor]:
    """Read the released checkpoint safely; return its state dict.

    Loads with ``torch.load(weights_only=True)``, allowing the types of
    :data:`OFFICIAL_SAFE_GLOBALS` for this call only, unwraps
    ``'state_dict'`` and strips a ``module.`` prefix (``nn.DataParallel``).

    Args:
        filename (str): The released ``.pth`` file.

    Returns:
        dict: ``name -> tensor`` in the released code's names.
    """
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} does not exist.')
    try:
        with torch.serialization.safe_globals(OFFICIAL_SAFE_GLOBALS):
            checkpoint = torch.load(
                filename, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        allowed = [
            f'{t.__module__}.{t.__name__}' for t in OFFICIAL_SAFE_GLOBALS
        ]
        raise pickle.UnpicklingError(
            f'Refused to load {filename}: besides tensors it holds a pickled '
            'object of a type that is not allow-listed '
            f'({_refused_name(str(e))}); the released LPT checkpoint holds '
            f'tensors and at most {allowed}. Loading it could run arbitrary '
            'code, so this is not the released file or it was modified. If '
            'you trust it, load it with torch.load(weights_only=False) and '
            f"re-save its 'state_dict' only.\ntorch said: {e}") from e
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{filename} holds a {type(checkpoint).__name__}, '
                         'not a checkpoint dict.')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict):
        raise ValueError(f"{filename}: 'state_dict' is a "
                         f'{type(state_dict).__name__}, not a dict.')
    tensors = {k: v for k, v in state_dict.items() if torch.is_tensor(v)}
    if len(tensors) != len(state_dict):
        others = [k for k in state_dict if k not in tensors]
        raise ValueError(f'{filename}: the state dict holds non-tensor '
                         f'entries {others[:5]}; it is not a model state '
                         'dict.')
    if any(k.startswith('module.') for k in tensors):
        if not all(k.startswith('module.') for k in tensors):
            raise ValueError(
                f"{filename}: only some keys start with 'module.'; the "
                'state dict mixes two models.')
        tensors = {k[len('module.'):]: v for k, v in tensors.items()}
    return tensors


def _arch_of_model(model: torch.nn.Module) -> dict:
    return dict(
        num_layers=model.backbone.num_layers,
        embed_dims=model.backbone.embed_dims,
        prompt_length=model.backbone.prompt_length,
        pool_size=model.neck.pool_size,
        share_blocks=model.share_blocks,
        num_classes=model.head.num_classes)


def convert_official_checkpoint(src: str, dst: str, model_cfg: dict) -> dict:
    """Convert the released checkpoint into a full LPTClassifier checkpoint.

    The model of ``model_cfg`` is built (no weights read), its state dict is
    replaced by the converted one (every key must match, with its shape),
    and two files are written: ``dst``, a full checkpoint
    ``{'state_dict', 'meta'}``, and next to it (:func:`prompt_only_path`)
    a prompt-only checkpoint whose frozen backbone is ``dst``'s.

    Args:
        src (str): The released ``.pth`` file.
        dst (str): The full checkpoint to write.
        model_cfg (dict): The LPTClassifier config, e.g. the ``model`` of
            ``configs/lpt/phase2_places_official.py``; its backbone's
            ``init_cfg`` is pointed at ``dst``.

    Returns:
        dict: The saved full checkpoint.
    """
    state_dict, arch = convert_official_state_dict(
        load_official_checkpoint(src))
    model_cfg = copy.deepcopy(dict(model_cfg))
    if model_cfg.get('type') != 'LPTClassifier' or not model_cfg.get('neck'):
        raise ValueError(
            'The config must build an LPTClassifier with a PromptPoolNeck '
            '(a phase-2 model), e.g. configs/lpt/phase2_places_official.py.')
    model_cfg['backbone'] = dict(
        model_cfg['backbone'],
        init_cfg=dict(type='Pretrained', checkpoint=dst))
    model = MODELS.build(model_cfg)
    built = _arch_of_model(model)
    if built != arch:
        diff = {k: (arch[k], built[k]) for k in arch if arch[k] != built[k]}
        raise ValueError(
            f'{src} does not fit the config: (checkpoint, config) differ in '
            f'{diff}. Set the config to the checkpoint\'s {arch}.')
    model.load_state_dict(state_dict, strict=True)

    meta = dict(
        converted_from='official LPT (DongSky/LPT)',
        source=osp.basename(src),
        **arch)
    checkpoint = dict(state_dict=model.state_dict(), meta=meta)
    atomic_torch_save(checkpoint, dst)
    save_prompt_checkpoint(model, prompt_only_path(dst), dict(meta))
    return checkpoint


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert the released LPT checkpoint to an '
        'LPTClassifier checkpoint (plus a prompt-only file).')
    parser.add_argument('src', help='the released LPT checkpoint (.pth)')
    parser.add_argument('dst', help='output full checkpoint (.pth)')
    parser.add_argument(
        '--config',
        default=DEFAULT_CONFIG,
        help=f'config whose model to build (default: {DEFAULT_CONFIG})')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    checkpoint = convert_official_checkpoint(args.src, args.dst, cfg.model)
    meta = checkpoint['meta']
    print(f'Converted {args.src} ({meta["num_layers"]} blocks, width '
          f'{meta["embed_dims"]}, pool {meta["pool_size"]}, '
          f'{meta["num_classes"]} classes) to {args.dst} and '
          f'{prompt_only_path(args.dst)}.')


if __name__ == '__main__':
    main()
