"""Convert a timm ViT checkpoint to an MMPretrain VisionTransformer one.

Usage::

    python tools/model_converters/timm_to_mmpretrain.py SRC DST

SRC is a timm ViT checkpoint (``.pth`` / ``.bin`` / ``.safetensors``; a raw
state dict or one under ``'state_dict'`` / ``'model'``). DST receives
``{'state_dict': ..., 'meta': ...}`` with ``VisionTransformer`` keys (no
``backbone.`` prefix), loadable with
``init_cfg=dict(type='Pretrained', checkpoint=DST)`` by
``LPTVisionTransformer`` or MMPretrain's ``VisionTransformer``.
"""
import argparse
import os.path as osp
from typing import List, Optional

from lpt_mmpretrain.checkpoints import (atomic_torch_save, convert_timm_vit,
                                        is_timm_vit_state_dict,
                                        load_state_dict_file)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a timm ViT checkpoint to MMPretrain '
        'VisionTransformer keys.')
    parser.add_argument('src', help='timm checkpoint (.pth/.bin/.safetensors)')
    parser.add_argument('dst', help='output MMPretrain checkpoint (.pth)')
    return parser.parse_args(argv)


def convert(src: str, dst: str) -> dict:
    """Convert ``src`` and save it to ``dst``; return the saved dict."""
    state_dict, _ = load_state_dict_file(src, map_location='cpu')
    if not is_timm_vit_state_dict(state_dict):
        raise ValueError(
            f'{src} is not a timm ViT checkpoint: it has no '
            "'patch_embed.proj.weight' nor 'blocks.<i>.attn.qkv.weight' "
            f'(first keys: {list(state_dict)[:5]}).')
    converted = convert_timm_vit(state_dict)
    num_layers = len(
        {k.split('.')[1]
         for k in converted if k.startswith('layers.')})
    checkpoint = dict(
        state_dict=converted,
        meta=dict(
            converted_from='timm',
            source=osp.basename(src),
            num_layers=num_layers,
            embed_dims=int(converted['cls_token'].shape[-1])
            if 'cls_token' in converted else None))
    atomic_torch_save(checkpoint, dst)  # no half-written file at dst
    return checkpoint


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    checkpoint = convert(args.src, args.dst)
    print(f'Converted {len(checkpoint["state_dict"])} tensors '
          f'({checkpoint["meta"]["num_layers"]} layers) from {args.src} '
          f'to {args.dst}.')


if __name__ == '__main__':
    main()
