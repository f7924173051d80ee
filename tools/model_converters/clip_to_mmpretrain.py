"""Convert OpenAI CLIP / open_clip ViT image-tower weights for LPT.

Usage::

    python tools/model_converters/clip_to_mmpretrain.py SRC DST [--keep-proj]

SRC is a whole CLIP model (``visual.*`` next to the text tower: OpenAI's
TorchScript ``ViT-B-16.pt``, open_clip's ``open_clip_pytorch_model.bin`` /
``open_clip_model.safetensors`` or a training checkpoint) or an image tower
alone. DST receives ``{'state_dict': ..., 'meta': ...}`` with the image tower
under ``backbone.`` in MMPretrain ``VisionTransformer`` names, loadable with
``init_cfg=dict(type='Pretrained', checkpoint=DST)`` by
``LPTVisionTransformer`` (configs/_base_/models/lpt_clip_vit_b16.py).
``--keep-proj`` also stores CLIP's image projection as
``neck.projection.weight`` for ``CLIPProjectionNeck``. See docs/clip.md.
"""
import argparse
import os.path as osp
from typing import List, Optional

from lpt_mmpretrain.checkpoints import (atomic_torch_save,
                                        convert_clip_checkpoint,
                                        load_clip_state_dict)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert CLIP ViT image-tower weights to an MMPretrain '
        'VisionTransformer checkpoint.')
    parser.add_argument('src', help='CLIP checkpoint (.pt/.bin/.safetensors)')
    parser.add_argument('dst', help='output MMPretrain checkpoint (.pth)')
    parser.add_argument(
        '--keep-proj',
        action='store_true',
        help='also store the image projection (neck.projection.weight)')
    return parser.parse_args(argv)


def convert(src: str, dst: str, keep_proj: bool = False) -> dict:
    """Convert ``src`` and save it to ``dst``; return the saved dict."""
    checkpoint = convert_clip_checkpoint(
        load_clip_state_dict(src),
        keep_proj=keep_proj,
        source=osp.basename(src))
    atomic_torch_save(checkpoint, dst)  # no half-written file at dst
    return checkpoint


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    checkpoint = convert(args.src, args.dst, args.keep_proj)
    meta = checkpoint['meta']
    proj = (f', projection to {meta["proj_dims"]}'
            if meta['proj_dims'] else '')
    print(f'Converted {len(checkpoint["state_dict"])} tensors from '
          f'{args.src} to {args.dst}: width {meta["embed_dims"]}, '
          f'{meta["num_layers"]} layers, patch {meta["patch_size"]}, '
          f'{meta["img_size"]} px{proj}.')


if __name__ == '__main__':
    main()
