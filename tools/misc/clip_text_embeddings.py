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
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from lpt_mmpretrain.checkpoints import atomic_torch_save, load_clip_state_dict

# LIFT's prompt for the text initialisation of the classifier.
CLIP_TEXT_TEMPLATE = 'a photo of a {}.'


def build_open_clip_text_model(model_name: str,
                               state_dict: Dict[str, torch.Tensor],
                               quick_gelu: bool = False,
                               with_proj: bool = True):
    """Build an open_clip model and load its text tower from a checkpoint.

    Nothing is downloaded: the model is built with ``pretrained=None`` and
    filled from ``state_dict``. Every text-tower tensor (and, with
    ``with_proj``, the image projection ``visual.proj``) must be there with
    the model's shape; the rest of the image tower is not needed.

    Args:
        model_name (str): An open_clip model name (``'ViT-B-16'``) or the
            path of an open_clip model config ``.json``.
        state_dict (dict): A whole CLIP state dict (OpenAI or open_clip
            names).
        quick_gelu (bool): Build with QuickGELU, as OpenAI's weights need
            (open_clip's ``force_quick_gelu``). Defaults to False.
        with_proj (bool): Also load ``visual.proj``. Defaults to True.

    Returns:
        tuple: ``(model, tokenizer)``.
    """
    try:
        import open_clip
    except ImportError as e:
        raise ImportError('CLIP text embeddings need open_clip: pip install '
                          'open_clip_torch') from e
    if model_name.endswith('.json'):
        from pathlib import Path
        open_clip.add_model_config(model_name)
        model_name = Path(model_name).stem
    if model_name not in open_clip.list_models():
        raise ValueError(f'Unknown open_clip model {model_name!r}: give a '
                         'name from open_clip.list_models() or the path of '
                         'a model config .json.')
    model = open_clip.create_model(
        model_name, pretrained=None, force_quick_gelu=quick_gelu)
    own = model.state_dict()
    wanted = [
        k for k in own
        if not k.startswith('visual.') and k not in ('logit_scale',
                                                     'logit_bias')
    ]
    if with_proj:
        wanted.append('visual.proj')
    for key in wanted:
        if key not in state_dict:
            raise ValueError(
                f"Key '{key}' of the {model_name} text tower is missing from "
                'the checkpoint: pass the whole CLIP checkpoint of this '
                'model (or fix the model name).')
        if state_dict[key].shape != own[key].shape:
            raise ValueError(
                f"Key '{key}' has shape {tuple(state_dict[key].shape)} in "
                f'the checkpoint but {tuple(own[key].shape)} in '
                f'{model_name}: the model name does not match the '
                'checkpoint.')
    model.load_state_dict({k: state_dict[k] for k in wanted}, strict=False)
    return model, open_clip.get_tokenizer(model_name)


@torch.no_grad()
def clip_text_embeddings(clip_model: torch.nn.Module,
                         tokenizer,
                         class_names: Sequence[str],
                         template: str = CLIP_TEXT_TEMPLATE,
                         image_space: bool = True) -> torch.Tensor:
    """LIFT's text initialisation of a cosine classifier.

    Each class name (``_`` read as a space) fills ``template``; the text
    tower's L2-normalised embedding is, with ``image_space``, mapped back
    through the image projection (``e @ proj.T``) and normalised again, so it
    lives where the backbone feature (``ln_post`` on the CLS token, before
    the projection) does, as LIFT does for CLIP ViTs.

    Args:
        clip_model (nn.Module): An open_clip ``CLIP`` model with weights.
        tokenizer (callable): Its tokenizer (``open_clip.get_tokenizer``).
        class_names (Sequence[str]): Names in label order.
        template (str): Prompt with one ``{}``. Defaults to
            ``'a photo of a {}.'``.
        image_space (bool): Map to the image tower's width (C) instead of
            the joint embedding (D). Defaults to True.

    Returns:
        torch.Tensor: (num_classes, C) or, without ``image_space``,
        (num_classes, D) unit rows.
    """
    if not class_names:
        raise ValueError('No class names given.')
    if template.count('{}') != 1:
        raise ValueError(
            f"template must contain '{{}}' once, got {template!r}.")
    clip_model.eval()
    prompts = [template.format(name.replace('_', ' ')) for name in class_names]
    device = next(clip_model.parameters()).device
    emb = F.normalize(
        clip_model.encode_text(tokenizer(prompts).to(device)),
        dim=-1)  # (K, D)
    if image_space:
        proj = getattr(clip_model.visual, 'proj', None)
        if proj is None:
            raise ValueError(
                'image_space=True needs the image projection visual.proj; '
                'this model has none. Use image_space=False.')
        emb = F.normalize(emb @ proj.t(), dim=-1)  # (K, C)
    return emb.float().cpu()


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
