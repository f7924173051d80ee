"""The whole LPT pipeline on DigitPairsLT, on a CPU, in a few minutes.

    python tools/demo.py [--work-dir work_dirs/demo] [--seeds 0 [1 ...]]
                         [--quick] [--jobs 2] [--threads 1]

For every seed, through ``tools/train.py`` / ``tools/test.py`` and the
configs of ``configs/lpt/``: a linear-probe baseline, LPT phase 1 and phase
2 on the frozen, shipped tiny-ViT stand-in, then ``tools/test.py`` on the
balanced test split and ``tools/analysis_tools/plot_per_class.py``. Training
validates on the val split (its own digit images), where the recipe was
chosen (``docs/demo_study.md``). Metrics
are read from MMEngine's JSON files (:mod:`lpt_tools.results`);
each child's output goes to ``WORK_DIR/logs/``; one line shows the overall
progress. ``--jobs`` runs independent steps side by side (the results do not
depend on it); ``--quick`` is a smoke mode (1 epoch per step).
"""
import argparse
import json
import os
import os.path as osp
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # the package, also before `pip install -e .`
# mmcv-lite has no compiled ops, and LPT uses none: the warning that every
# import of MMPretrain prints means nothing here (the children get the same
# filter through PYTHONWARNINGS).
warnings.filterwarnings(
    'ignore', message='Fail to import ``MultiScaleDeformableAttention``')

from lpt_mmpretrain.evaluation import GROUPS  # noqa: E402
from lpt_mmpretrain.evaluation import shot_group_convention, shot_group_masks
from lpt_tools.configs import build_untrained_model  # noqa: E402
from lpt_tools.configs import counts_from_config, write_test_images
from lpt_tools.demo_steps import clock  # noqa: E402
from lpt_tools.demo_steps import (DemoError, Progress, last_checkpoint,
                                  run_child, wait_all)
from lpt_tools.params import count_params  # noqa: E402
from lpt_tools.results import read_test_metrics, summarise_seeds  # noqa
from lpt_tools.tables import format_table  # noqa: E402

CONFIGS = osp.join('configs', 'lpt')
#: key, title, config, relative cost (for the progress line)
MODELS = (
    ('baseline', 'baseline: linear probe (CE, plain sampling)',
     osp.join(CONFIGS, 'baseline_digit_pairs_linear_probe.py'), 1.),
    ('phase1', 'LPT phase 1 (shared prompt)',
     osp.join(CONFIGS, 'phase1_digit_pairs.py'), 2.),
    ('phase2', 'LPT phase 2 (+ prompt pool)',
     osp.join(CONFIGS, 'phase2_digit_pairs.py'), 2.5),
)
METRICS = ('long_tail/top1', 'long_tail/many', 'long_tail/medium',
           'long_tail/few')
TEST_COST = 0.3


def run_seed(seed: int, args, progress: Progress, pool) -> Dict[str, dict]:
    """Train and test the three models for one seed; returns their rows."""
    work_dir = osp.join(args.work_dir, f'seed_{seed}')
    logs = osp.join(work_dir, 'logs')
    epochs = 1 if args.quick else None
    dirs = {key: osp.join(work_dir, key) for key, _, _, _ in MODELS}
    # the phase-1 run phase 2 starts from (training and testing)
    model_options = {'phase2': [f'model.phase1_checkpoint={dirs["phase1"]}']}
    quick = [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1'
    ] if args.quick else []
    rows = {}

    def train(key, config, weight):
        from mmengine.config import Config
        max_epochs = epochs or Config.fromfile(config).train_cfg.max_epochs
        progress.run(
            f'seed {seed} {key}', weight, lambda: run_child([
                'tools/train.py', config, '--work-dir', dirs[key],
                '--cfg-options', f'randomness.seed={seed}', *model_options.get(
                    key, []), *quick
            ], osp.join(logs, f'train_{key}.log'), args.threads), dirs[key],
            max_epochs)

    def test(key, title, config):
        full = last_checkpoint(dirs[key])
        prompts = full[:-len('.pth')] + '_prompts.pth'
        tested = prompts if key != 'baseline' and osp.isfile(prompts) else full
        test_dir = osp.join(dirs[key], 'test')
        preds = osp.join(dirs[key], 'preds.pkl')
        progress.run(
            f'seed {seed} test {key}', TEST_COST, lambda: run_child([
                'tools/test.py', config, tested, '--work-dir', test_dir,
                '--out', preds, *_cfg_options(model_options.get(key, []))
            ], osp.join(logs, f'test_{key}.log'), args.threads))
        rows[key] = dict(
            title=title,
            config=config,
            checkpoint=tested,
            preds=preds,
            metrics=read_test_metrics(test_dir))

    (b_key, b_title, b_cfg, b_w), (p1_key, p1_title, p1_cfg, p1_w), \
        (p2_key, p2_title, p2_cfg, p2_w) = MODELS
    # Steps start when what they need exists: baseline and phase 1 need only
    # the stand-in; phase 2 needs phase 1; each test its own run.
    first = [
        pool.submit(train, b_key, b_cfg, b_w),
        pool.submit(train, p1_key, p1_cfg, p1_w)
    ]
    wait_all(first)
    later = [
        pool.submit(train, p2_key, p2_cfg, p2_w),
        pool.submit(test, b_key, b_title, b_cfg),
        pool.submit(test, p1_key, p1_title, p1_cfg)
    ]
    wait_all(later[:1])
    wait_all(later[1:] + [pool.submit(test, p2_key, p2_title, p2_cfg)])
    figure = osp.join(work_dir, 'per_class_accuracy.png')
    progress.run(
        f'seed {seed} figures', TEST_COST, lambda: run_child([
            'tools/analysis_tools/plot_per_class.py', '--preds',
            *[rows[k]['preds'] for k, _, _, _ in MODELS], '--labels',
            'baseline', 'LPT phase 1', 'LPT phase 2', '--config', p1_cfg,
            '--title', f'DigitPairsLT test split, seed {seed}', '--out',
            figure, '--counts-out',
            osp.join(work_dir, 'class_counts.png')
        ], osp.join(logs, 'plot_per_class.log'), args.threads))
    return {key: rows[key] for key, _, _, _ in MODELS}


def _cfg_options(options: List[str]) -> List[str]:
    return ['--cfg-options', *options] if options else []


def tables(runs: Dict[int, Dict[str, dict]]) -> str:
    """Markdown: one row per seed and model, then mean +- std per model."""
    names = [m.split('/')[1] for m in METRICS]
    params = {  # (total, trainable)
        key: count_params(build_untrained_model(cfg))
        for key, _, cfg, _ in MODELS
    }
    per_seed = [[seed, row['title']] +
                [f'{row["metrics"][m]:.2f}' for m in METRICS]
                for seed, rows in runs.items() for row in rows.values()]
    text = format_table(['seed', 'model'] + names, per_seed)
    summary = summarise_seeds([{
        k: r['metrics']
        for k, r in rows.items()
    } for rows in runs.values()], METRICS)
    mean_rows = [[title] + [
        f'{summary[key][m][0]:.2f} ± {summary[key][m][1]:.1f}' for m in METRICS
    ] + [f'{params[key][1]:,}', f'{params[key][0]:,}']
                 for key, title, _, _ in MODELS]
    text += (
        f'\n\nMean ± standard deviation over {len(runs)} seed(s):\n\n' +
        format_table(['model'] + names + ['trainable', 'total'], mean_rows))
    return text


def groups_note(config: str) -> str:
    counts, _, thresholds = counts_from_config(config)
    masks = shot_group_masks(counts, *thresholds)
    ranges = shot_group_convention(*thresholds)
    return (f'{len(counts)} classes, {sum(counts):,} training images '
            f'({max(counts)} .. {min(counts)} per class); ' +
            ', '.join(f'{g} {ranges[g]} ({int(masks[g].sum())} classes)'
                      for g in GROUPS))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=[0],
        help='randomness.seed of the runs, one pipeline each (default: 0)')
    parser.add_argument(
        '--quick',
        action='store_true',
        help='smoke mode: 1 epoch per step, meaningless accuracies')
    parser.add_argument(
        '--jobs',
        type=int,
        default=2,
        help='steps at the same time where independent (default: 2)')
    parser.add_argument(
        '--threads',
        type=int,
        default=1,
        help="torch threads of every child; 0 keeps torch's default "
        '(default: 1)')
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.threads < 0:
        parser.error('--jobs must be >= 1 and --threads >= 0.')
    args.work_dir = osp.abspath(args.work_dir)
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    per_seed = sum(w for *_, w in MODELS) + (len(MODELS) + 1) * TEST_COST
    progress = Progress(per_seed * len(args.seeds), sys.stdout.isatty())
    mode = ' (QUICK MODE: 1 epoch per step, numbers meaningless)' \
        if args.quick else ''
    print(
        f'LPT demo on DigitPairsLT, seeds {args.seeds}{mode}; logs and '
        f'outputs under {osp.relpath(args.work_dir)}/',
        flush=True)
    stop = threading.Event()

    def tick():
        while not stop.wait(1.):
            progress.show()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    runs: Dict[int, Dict[str, dict]] = {}
    seconds: Dict[int, float] = {}
    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for seed in args.seeds:
                start = time.monotonic()
                runs[seed] = run_seed(seed, args, progress, pool)
                seconds[seed] = round(time.monotonic() - start, 1)
    finally:
        stop.set()
        ticker.join()
    progress.show(final=True)
    wall = time.monotonic() - progress.start
    text = (f'{tables(runs)}\n\nDigitPairsLT: {groups_note(MODELS[1][2])}. '
            f'Test split: 10 pairs per class (top-1 = class mean), read '
            'only here; the recipe was chosen on the val split '
            f'(docs/demo_study.md). Wall '
            f'time {clock(wall)}{mode}.\n')
    results = dict(
        dataset='DigitPairsLT',
        seeds=args.seeds,
        quick=args.quick,
        wall_time_s=round(wall, 1),
        seed_wall_time_s=seconds,
        runs={
            str(s): r
            for s, r in runs.items()
        })
    os.makedirs(args.work_dir, exist_ok=True)
    images = write_test_images(MODELS[2][2], osp.join(args.work_dir, 'images'))
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(text)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    print(
        '\n' + text + f'\nTables: {osp.relpath(args.work_dir)}/results.md'
        f', results.json; figures: seed_N/per_class_accuracy.png, '
        f'class_counts.png; test images to try the tools on: '
        f'{", ".join(osp.relpath(p) for p in images)}',
        flush=True)
    return results


if __name__ == '__main__':
    try:
        main()
    except DemoError as error:
        print(f'\nDEMO FAILED: {error}', file=sys.stderr, flush=True)
        sys.exit(1)
