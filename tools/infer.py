"""Classify images with a trained LPT model: top-k classes by name, JSON.

    python tools/infer.py CONFIG CHECKPOINT IMAGE|FOLDER|LIST.txt [...] \
        [--topk 5] [--out results.json | --out -] [--classes names.txt] \
        [--cfg-options key=value ...]

CHECKPOINT is a full or a prompt-only checkpoint. A thin CLI over
:class:`lpt_mmpretrain.apis.LPTClassifierInferencer`; see docs/inference.md.
"""
import argparse
import contextlib
import json
import sys
from typing import List, Optional, Sequence

from mmengine.config import DictAction


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Top-k classes of images, a folder or a list file.')
    parser.add_argument(
        'config', help='config file, or a name of list_models("lpt*")')
    parser.add_argument('checkpoint', help='full or prompt-only checkpoint')
    parser.add_argument(
        'inputs',
        nargs='+',
        help='image files, folders (searched recursively) or .txt lists '
        'of image paths (relative to the list)')
    parser.add_argument(
        '--topk', type=int, default=5, help='classes per image (default: 5)')
    parser.add_argument(
        '--out',
        help='write the results as JSON to this file; "-" prints the JSON '
        'instead of the table')
    parser.add_argument(
        '--classes',
        help='text file of class names, one per line in label order '
        '(default: the checkpoint\'s or the data set\'s names)')
    parser.add_argument(
        '--device', default=None, help='e.g. cpu or cuda:0 (default: auto)')
    parser.add_argument(
        '--batch-size', type=int, default=1, help='images per forward pass')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value')
    args = parser.parse_args(argv)
    if args.topk < 1:
        parser.error(f'--topk must be >= 1, got {args.topk}.')
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}.')
    return args


def format_table(results: List[dict]) -> str:
    """One line per image: ``path: class (score), ...``."""
    lines = []
    for result in results:
        best = ', '.join(
            f"{r['class'] if r['class'] is not None else r['label']} "
            f"({r['score']:.3f})" for r in result['topk'])
        lines.append(f"{result['image']}: {best}")
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    args = parse_args(argv)
    # stdout carries the results only (the table, or the JSON of `--out -`):
    # loading messages and the progress bar go to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        from lpt_mmpretrain.apis import LPTClassifierInferencer, model_config
        config = (
            model_config(args.config, args.cfg_options)
            if args.cfg_options else args.config)
        inferencer = LPTClassifierInferencer(
            config, args.checkpoint, device=args.device, classes=args.classes)
        results = inferencer(
            args.inputs, topk=args.topk, batch_size=args.batch_size)
    if args.out == '-':
        json.dump(results, sys.stdout, indent=2)
        sys.stdout.write('\n')
        return results
    print(format_table(results))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
        print(f'Wrote {len(results)} results to {args.out}')
    return results


if __name__ == '__main__':
    main()
