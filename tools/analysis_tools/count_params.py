"""Count the trainable and frozen parameters of a model, by LPT component.

Usage::

    python tools/analysis_tools/count_params.py CONFIG [--cfg-options ...]

The model is built from CONFIG without loading any weight (``init_weights``
is not called; a phase-2 config gets ``allow_no_phase1=True``), so it works
without the checkpoints the config names. Output: a markdown table
``| component | trainable | frozen | total |`` with one row per component,
always in this order (a row the model lacks reads 0):

- ``backbone (pretrained weights)``: ``backbone.*`` except the prompt;
- ``backbone.prompt (shared prompt)``;
- ``neck.prompt (prompt pool)``;
- ``neck.key (keys)``;
- ``head``: ``head.*``;
- ``other``: every other parameter;

then a ``total`` row, and a ``trainable ratio`` line (trainable / total, %).
For ViT-B/16 in phase 2 on Places-LT: shared prompt 92,160 (frozen), pool
921,600, keys 15,360, head 768 x 365 = 280,320.
"""
import argparse
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.config import Config, DictAction
from mmpretrain.registry import MODELS
from mmpretrain.utils import register_all_modules

import lpt_mmpretrain  # noqa: F401  (registers the LPT modules)

__all__ = ['COMPONENTS', 'component_of', 'count_by_component', 'format_table']

#: Table rows, in order.
COMPONENTS = ('backbone (pretrained weights)',
              'backbone.prompt (shared prompt)', 'neck.prompt (prompt pool)',
              'neck.key (keys)', 'head', 'other')


def component_of(name: str) -> str:
    """The component (a :data:`COMPONENTS` entry) of a parameter name."""
    if name == 'backbone.prompt':
        return COMPONENTS[1]
    if name.startswith('backbone.'):
        return COMPONENTS[0]
    if name == 'neck.prompt':
        return COMPONENTS[2]
    if name == 'neck.key':
        return COMPONENTS[3]
    if name.startswith('head.'):
        return COMPONENTS[4]
    return COMPONENTS[5]


def count_by_component(model: nn.Module) -> Dict[str, Tuple[int, int]]:
    """``{component: (trainable, frozen)}`` for every :data:`COMPONENTS`."""
    counts = {name: [0, 0] for name in COMPONENTS}
    for name, param in model.named_parameters():
        counts[component_of(name)][0 if param.requires_grad else 1] += \
            param.numel()
    return {name: tuple(c) for name, c in counts.items()}


def format_table(counts: Dict[str, Tuple[int, int]]) -> str:
    """The markdown table and the trainable-ratio line."""
    lines: List[str] = [
        '| component | trainable | frozen | total |', '|---|---|---|---|'
    ]
    for name in COMPONENTS:
        trainable, frozen = counts[name]
        lines.append(f'| {name} | {trainable:,} | {frozen:,} | '
                     f'{trainable + frozen:,} |')
    trainable = sum(c[0] for c in counts.values())
    frozen = sum(c[1] for c in counts.values())
    total = trainable + frozen
    lines.append(f'| total | {trainable:,} | {frozen:,} | {total:,} |')
    ratio = 100. * trainable / total if total else 0.
    lines.append('')
    lines.append(f'trainable ratio: {trainable:,} / {total:,} = {ratio:.3f} %')
    return '\n'.join(lines)


def build_model(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` with random weights; nothing is loaded."""
    model_cfg = cfg.model.to_dict()
    if model_cfg.get('type') == 'LPTClassifier':
        model_cfg.update(allow_no_phase1=True, phase1_checkpoint=None)
    return MODELS.build(model_cfg)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Count trainable and frozen parameters by component.')
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, e.g. model.head.num_classes=10')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    model = build_model(cfg)
    print(f'# Parameters of {args.config} ({type(model).__name__}, built '
          'without loading weights)\n')
    print(format_table(count_by_component(model)))


if __name__ == '__main__':
    main()
