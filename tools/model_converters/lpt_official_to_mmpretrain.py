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
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from lpt_mmpretrain.models.utils.official_convert import (
    convert_official_checkpoint, prompt_only_path)

DEFAULT_CONFIG = 'configs/lpt/phase2_places_official.py'


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
