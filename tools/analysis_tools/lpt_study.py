"""Study a recipe on the val split: a grid of runs, or what a pool does.

    # every variant for every seed (finished runs are read, not rerun)
    python tools/analysis_tools/lpt_study.py grid --root work_dirs/study \\
        --seeds 0 1 2 --ref p2 \\
        --variant p1 configs/lpt/phase1_digit_pairs.py \\
        --variant p2 configs/lpt/phase2_digit_pairs.py \\
            'model.phase1_checkpoint={root}/p1/seed_{seed}' \\
        --variant p2_lr01 configs/lpt/phase2_digit_pairs.py \\
            'model.phase1_checkpoint={root}/p1/seed_{seed}' \\
            optim_wrapper.optimizer.lr=0.01

    # which entries a trained phase-2 run picks on the val split
    python tools/analysis_tools/lpt_study.py pool --root work_dirs/study \\
        --name p2 --seeds 0 1 2 --config configs/lpt/phase2_digit_pairs.py \\
        --out pool_selection.png

    grid ... --plot diffs.png      # bars of the paired differences to --ref

``grid`` prints mean ± sample std over the seeds of the val metrics and,
with ``--ref``, the paired difference to that variant (see
:mod:`lpt_tools.study` for the variant syntax). ``pool`` prints how many
entries are ever picked, how much the picks follow the class, the tens
digit, the units digit and the shot group (normalised mutual information),
and the keys' mean cosine; ``--out`` draws the share of each class's val
images that pick each entry.
"""
import argparse
import ast
import json
import os.path as osp
import sys
from typing import Optional, Sequence

import numpy as np

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(TOOLS))
sys.path.append(TOOLS)
from lpt_mmpretrain.evaluation import shot_group_masks  # noqa: E402
from lpt_tools.configs import counts_from_config  # noqa: E402
from lpt_tools.demo_steps import last_checkpoint  # noqa: E402
from lpt_tools.study import parse_variant  # noqa: E402
from lpt_tools.study import (format_grid, pool_usage, run_dir, run_grid,
                             selection_purity, summarise_grid)

METRICS = ('long_tail/top1', 'long_tail/many', 'long_tail/medium',
           'long_tail/few')


def literal(value: str):
    """A KEY=VALUE value as Python reads it, else the string."""
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def grid(args) -> dict:
    variants = [parse_variant(v) for v in args.variant]
    results = run_grid(variants, args.seeds, args.root, args.jobs,
                       args.threads)
    rows = summarise_grid(results, METRICS, args.ref)
    print(format_grid(rows, METRICS, args.ref), flush=True)
    if args.plot:
        if not args.ref:
            raise SystemExit('--plot draws the differences to --ref: give it.')
        from lpt_tools.plots import plot_grid
        rows = [
            r for r in rows
            if r['name'] != args.ref and 'd_long_tail/top1' in r
        ]
        plot_grid(
            [r['name'] for r in rows], {
                f'{m.split("/")[1]} - {args.ref}': [r[f'd_{m}'] for r in rows]
                for m in ('long_tail/top1', 'long_tail/few')
            }, args.plot, 'val points (mean ± std over seeds, paired)',
            f'Variants against {args.ref}, seeds {args.seeds}')
        print(f'wrote {args.plot}')
    return results


def pool(args) -> dict:
    counts, _, thresholds = counts_from_config(args.config)
    masks = shot_group_masks(counts, *thresholds)
    group = np.zeros(len(counts), int)
    for i, g in enumerate(masks):
        group[masks[g]] = i
    stats, share = [], None
    for seed in args.seeds:
        work_dir = run_dir(args.root, args.name, seed)
        if not osp.isfile(osp.join(work_dir, 'last_checkpoint')):
            raise FileNotFoundError(
                f'{work_dir} holds no finished training run: run `grid` '
                f'with the variant {args.name} first.')
        options = {k: literal(v) for k, v in args.options}
        use = pool_usage(args.config, last_checkpoint(work_dir), options)
        top1, labels = use['picks'][:, 0], use['labels']
        off = use['key_cos'][~np.eye(use['pool_size'], dtype=bool)]
        stats.append(
            dict(
                seed=seed,
                ever_picked=len(np.unique(use['picks'])),
                top1_picked=len(np.unique(top1)),
                pool_size=use['pool_size'],
                nmi_class=selection_purity(top1, labels),
                # the same with the picks shuffled: the score of chance
                nmi_class_chance=selection_purity(
                    np.random.RandomState(seed).permutation(top1), labels),
                nmi_tens=selection_purity(top1, labels // 10),
                nmi_units=selection_purity(top1, labels % 10),
                nmi_group=selection_purity(top1, group[labels]),
                key_cos_mean=float(off.mean()),
                key_cos_max=float(off.max()),
                key_pairs_cos_above_09=int((off > 0.9).sum()) // 2))
        if share is None:  # the figure: the first seed
            share = np.zeros((len(counts), use['pool_size']))
            np.add.at(share, (labels, top1), 1)
            share /= np.maximum(share.sum(1, keepdims=True), 1)
    for s in stats:
        print(json.dumps({k: round(v, 3) for k, v in s.items()}), flush=True)
    if args.out:
        from lpt_tools.plots import plot_pool_selection
        plot_pool_selection(share, args.out,
                            f'{args.name}, seed {args.seeds[0]}, val split')
        print(f'wrote {args.out}')
    return dict(stats=stats, share=share)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    g = sub.add_parser('grid', help='train variants x seeds, score on val')
    g.add_argument(
        '--variant',
        nargs='+',
        action='append',
        required=True,
        metavar='NAME CONFIG [KEY=VALUE]')
    g.add_argument('--ref', help='variant for the paired differences')
    g.add_argument('--plot', help='PNG of the differences to --ref')
    g.add_argument('--jobs', type=int, default=2)
    g.add_argument('--threads', type=int, default=1)
    p = sub.add_parser('pool', help="a phase-2 run's picks on val")
    p.add_argument('--name', required=True, help='the variant of `grid`')
    p.add_argument('--config', required=True)
    p.add_argument(
        '--options',
        nargs='*',
        default=[],
        type=lambda s: s.split('=', 1),
        help='KEY=VALUE overrides the run had (pool size, top-k, ...)')
    p.add_argument('--out', help='PNG of the picks per class')
    for sp in (g, p):
        sp.add_argument('--root', default='work_dirs/study')
        sp.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    args = parser.parse_args(argv)
    args.root = osp.abspath(args.root)
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    return grid(args) if args.command == 'grid' else pool(args)


if __name__ == '__main__':
    main()
