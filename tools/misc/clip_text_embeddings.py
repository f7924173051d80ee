"""Write CLIP text embeddings of class names, to initialise a cosine head.

Usage::

    python tools/misc/clip_text_embeddings.py CLIP_CKPT CLASS_NAMES DST \
        [--model ViT-B-16] [--quick-gelu] [--template 'a photo of a {}.'] \
        [--joint-space]

CLIP_CKPT is the whole CLIP checkpoint (the text tower and the image
projection are read); CLASS_NAMES a text file with one class name per line,
in label order. DST receives ``{'state_dict': {'head.fc.weight': (K, C)},
'meta': ...}``: the L2-normalised embedding of each prompt, mapped back to
the image tower's width C through the projection as LIFT does (or, with
``--joint-space``, left in CLIP's joint space D, for a head after
``CLIPProjectionNeck``). A config starts its head from it with
``head=dict(init_cfg=dict(type='Pretrained', checkpoint=DST,
prefix='head.'))``, so training needs no text tower. See docs/clip.md.
Needs ``pip install open_clip_torch``; downloads nothing.
"""
import argparse
import os.path as osp
from typing import List, Optional

from lpt_mmpretrain.engine.compat.checkpoint import atomic_torch_save
from lpt_mmpretrain.models.utils.clip_convert import (
    CLIP_TEXT_TEMPLATE, build_open_clip_text_model, clip_text_embeddings,
    load_clip_state_dict)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write CLIP text embeddings of class names as the '
        'initial weight of a cosine head.')
    parser.add_argument('checkpoint', help='whole CLIP checkpoint')
    parser.add_argument('class_names', help='text file, one name per line')
    parser.add_argument('dst', help='output file (.pth)')
    parser.add_argument(
        '--model',
        default='ViT-B-16',
        help='open_clip model name or model config .json (default ViT-B-16)')
    parser.add_argument(
        '--quick-gelu',
        action='store_true',
        help='build with QuickGELU (OpenAI weights need it)')
    parser.add_argument(
        '--template',
        default=CLIP_TEXT_TEMPLATE,
        help=f'prompt with one {{}} (default {CLIP_TEXT_TEMPLATE!r})')
    parser.add_argument(
        '--joint-space',
        action='store_true',
        help='keep the joint-space embeddings (for CLIPProjectionNeck)')
    return parser.parse_args(argv)


def read_class_names(path: str) -> List[str]:
    """Non-empty lines of ``path``, stripped, in order."""
    with open(path, encoding='utf-8') as f:
        names = [line.strip() for line in f if line.strip()]
    if not names:
        raise ValueError(f'{path} holds no class names (one per line).')
    return names


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    names = read_class_names(args.class_names)
    model, tokenizer = build_open_clip_text_model(
        args.model,
        load_clip_state_dict(args.checkpoint),
        quick_gelu=args.quick_gelu,
        with_proj=not args.joint_space)
    weight = clip_text_embeddings(
        model,
        tokenizer,
        names,
        template=args.template,
        image_space=not args.joint_space)
    out = dict(
        state_dict={'head.fc.weight': weight},
        meta=dict(
            source=osp.basename(args.checkpoint),
            model=args.model,
            quick_gelu=args.quick_gelu,
            template=args.template,
            image_space=not args.joint_space,
            class_names=names))
    atomic_torch_save(out, args.dst)
    print(f'Wrote {weight.shape[0]} class embeddings of width '
          f'{weight.shape[1]} to {args.dst}.')
    return out


if __name__ == '__main__':
    main()
