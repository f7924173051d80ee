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
import os.path as osp
import sys
from typing import Optional, Sequence

from mmengine.config import DictAction

import lpt_mmpretrain  # noqa: F401  (registers the LPT modules)

sys.path.append(osp.dirname(osp.dirname(osp.abspath(__file__))))
from lpt_tools.configs import build_untrained_model  # noqa: E402  (tools/)
from lpt_tools.params import component_table  # noqa: E402
from lpt_tools.params import count_by_component


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
    model = build_untrained_model(args.config, args.cfg_options)
    print(f'# Parameters of {args.config} ({type(model).__name__}, built '
          'without loading weights)\n')
    print(component_table(count_by_component(model)))


if __name__ == '__main__':
    main()
