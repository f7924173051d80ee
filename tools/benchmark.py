"""Benchmark LPT; docs/benchmarks/index.md says what it measures and prints.

Usage::

    python tools/benchmark.py CONFIG [--mode lpt|multitask|deploy|serve] \\
        [--phase1-config CFG1] [--batch-size 32] [--infer-batch-size 64] \\
        [--iters 10] [--warmup 3] [--device cpu|cuda] [--amp none|fp16|bf16] \\
        [--img-size H [W]] [--threads N] [--seed 0] [--json OUT] \\
        [--tasks 1 4 16] [--servings shared separate] [--compare single own] \\
        [--backends eager compile onnxruntime] \\
        [--batch-sizes 1 32] [--phases 1 2] [--rounds 3] [--min-run-time 1] \\
        [--clients 1 4 16] [--requests 200] [--max-batch-size 16] \\
        [--batch-wait-timeout-s 0.01] [--cfg-options k=v ...]

CONFIG is a phase-2 (``LPTClassifier``) config; models get random weights.
"""
import argparse
import json
import os
import os.path as osp
from typing import Optional, Sequence

import torch
from mmengine.config import DictAction

import lpt_mmpretrain  # noqa: F401  (registers the LPT modules)
from lpt_tools.benchmark.lpt import (  # noqa: F401  (the tests use them)
    AMP_DTYPES, PHASE2_ONLY_KEYS, RUNS, phase1_model_cfg, phase2_model_cfg,
    synthetic_class_counts)
from lpt_tools.benchmark.lpt_rows import expected_speedups  # noqa: F401
from lpt_tools.benchmark.lpt_rows import format_table
from lpt_tools.benchmark.runner import MODES, run_benchmark


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark LPT (docs/benchmarks/index.md): parameters, '
        'checkpoint sizes, training and inference speed and memory '
        '(--mode lpt); N tasks on one backbone vs N full models (--mode '
        'multitask); eager / torch.compile / ONNX Runtime on the CPU '
        '(--mode deploy); the HTTP server under concurrent clients (--mode '
        'serve).')
    parser.add_argument('config', help='phase-2 (LPTClassifier) config')
    parser.add_argument('--mode', choices=MODES, default='lpt')
    parser.add_argument(
        '--phase1-config',
        help='phase-1 config (default: derived from CONFIG, no neck)')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=32,
        help='images per sampling stream in a training step (the step sees '
        '2 x this: class-balanced + instance-balanced)')
    parser.add_argument(
        '--infer-batch-size',
        type=int,
        default=64,
        help='images per inference step (lpt, multitask)')
    parser.add_argument(
        '--iters', type=int, default=10, help='timed steps per run')
    parser.add_argument(
        '--warmup', type=int, default=3, help='untimed steps before them')
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='cpu or cuda[:N] (default: cuda if available; deploy: cpu)')
    parser.add_argument(
        '--amp',
        choices=list(AMP_DTYPES),
        default='none',
        help='autocast dtype of the forward pass (lpt)')
    parser.add_argument(
        '--img-size',
        type=int,
        nargs='+',
        help='input size H [W] (default: the backbone img_size of CONFIG)')
    parser.add_argument(
        '--threads',
        type=int,
        help='torch.set_num_threads for the runs (default: torch default)')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of weights and batches')
    parser.add_argument('--json', help='also write the figures to this file')
    parser.add_argument(
        '--tasks',
        type=int,
        nargs='+',
        default=[1, 4, 16],
        help='numbers of tasks (multitask)')
    for flag, values, text in (
        ('--servings', ('shared', 'separate'),
         'multitask: one backbone (shared) and/or N full models (separate; '
         'N backbones in memory)'),
        ('--compare', ('single', 'own'),
         'multitask: single-task steps timed beside the mixed batch: task 0 '
         'through the inferencer (single) and its own model (own)'),
        ('--backends', ('eager', 'compile', 'onnxruntime'),
         'backends (deploy)'),
        ('--phases', (1, 2), 'phases (deploy)'),
    ):
        parser.add_argument(
            flag,
            nargs='+',
            type=type(values[0]),
            default=list(values),
            choices=list(values),
            help=text)
    parser.add_argument(
        '--batch-sizes',
        type=int,
        nargs='+',
        default=[1, 32],
        help='batch sizes (deploy)')
    parser.add_argument(
        '--rounds',
        type=int,
        default=3,
        help='rounds of the backends in turn; --min-run-time is split over '
        'them (deploy)')
    parser.add_argument(
        '--min-run-time',
        type=float,
        default=1.,
        help='seconds of timed calls per figure (deploy)')
    parser.add_argument(
        '--clients',
        type=int,
        nargs='+',
        default=[1, 4, 16],
        help='concurrent HTTP clients (serve)')
    parser.add_argument(
        '--requests', type=int, default=200, help='requests per run (serve)')
    parser.add_argument(
        '--max-batch-size',
        type=int,
        default=16,
        help="the server's --max-batch-size (serve)")
    parser.add_argument(
        '--batch-wait-timeout-s',
        type=float,
        default=0.01,
        help="the server's --batch-wait-timeout-s (serve)")
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of CONFIG, e.g. model.share_blocks=4')
    args = parser.parse_args(argv)

    for name in ('batch_size', 'infer_batch_size', 'iters'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1.')
    if args.warmup < 0:
        parser.error('--warmup must be >= 0.')
    if args.threads is not None and args.threads < 1:
        parser.error('--threads must be >= 1.')
    if args.rounds < 1:
        parser.error('--rounds must be >= 1.')
    if min(args.clients) < 1 or args.requests < 1 or args.max_batch_size < 1:
        parser.error('--clients, --requests, --max-batch-size must be >= 1.')
    if min(args.tasks) < 1 or min(args.batch_sizes) < 1:
        parser.error('--tasks and --batch-sizes must be >= 1.')
    if args.img_size is not None and (len(args.img_size) > 2
                                      or min(args.img_size) < 1):
        parser.error('--img-size takes one or two positive sizes: H [W].')
    device = torch.device(args.device)
    if device.type not in ('cpu', 'cuda'):
        parser.error(f'--device must be cpu or cuda[:N], got {args.device}.')
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda, but torch sees no CUDA device; use '
                     '--device cpu.')
    if args.mode == 'deploy' and device.type != 'cpu':
        parser.error('--mode deploy measures the CPU: use --device cpu.')
    if (args.amp == 'bf16' and device.type == 'cuda'
            and not torch.cuda.is_bf16_supported()):
        parser.error('--amp bf16: this GPU does not support bfloat16; use '
                     '--amp fp16.')
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    meta, rows, extra = run_benchmark(args)
    print(f'# LPT benchmark: {args.config}\n')
    for key, value in meta.items():
        print(f'- {key}: {value}')
    print()
    print(format_table(rows))

    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(
                dict(
                    meta=meta,
                    figures={
                        key: value
                        for key, _, value, _ in rows
                    },
                    units={
                        key: unit
                        for key, _, _, unit in rows
                    },
                    **extra),
                f,
                indent=2)


if __name__ == '__main__':
    main()
