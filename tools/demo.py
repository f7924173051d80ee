"""The whole LPT pipeline on DigitsLT, on a CPU, in a few minutes.

Usage::

    python tools/demo.py [--work-dir work_dirs/demo] [--seed 0] [--quick] \\
        [--jobs 2] [--threads 1]

DigitsLT is scikit-learn's bundled 8x8 digits (no download) split into a
long-tailed training split (84 .. 8 images per class), a balanced test split
(30 per class) and a balanced, disjoint ``pretrain`` split. The demo runs,
through ``tools/train.py`` and ``tools/test.py`` (subprocesses, the configs
of ``configs/lpt/``, exactly as a real run):

1. pretraining of a tiny ViT on the ``pretrain`` split
   (``digits_pretrain_vit_tiny.py``), a stand-in for ImageNet-21k;
2. a baseline on the long-tailed split: a linear probe of the frozen tiny
   ViT (``baseline_digits_linear_probe.py``: linear head, cross-entropy,
   plain sampling);
3. LPT phase 1 (``phase1_digits.py``: frozen tiny ViT, shared prompt, cosine
   head, A-GCL, dual sampling);
4. LPT phase 2 (``phase2_digits.py``: prompt pool over the last blocks, from
   the phase-1 work dir);
5. ``tools/test.py --out`` on the test split for the three models (the LPT
   models from their prompt-only checkpoints plus the pretrained backbone),

then draws per-class accuracy against training count and the class counts
(``tools/analysis_tools/plot_per_class.py``) and prints one markdown table:
top-1, class mean, many / medium / few-shot accuracy, trainable and total
parameters. The table is also written to ``WORK_DIR/results.md`` and
``WORK_DIR/results.json``; every child's full log to ``WORK_DIR/logs/``.

``--jobs`` (default 2) runs independent steps side by side: the baseline
beside phase 1, the first two tests beside phase 2. Every step is its own
process with its own seed, so the results do not depend on it.

``--seed`` sets ``randomness.seed`` of every training run (initialisation,
sampling, dropout, A-GCL noise); the data split itself is fixed (DigitsLT's
own ``seed=0``). ``--quick`` is a smoke mode for the tests: one epoch per
stage, meaningless accuracies.
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import re
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(ROOT, 'tools')
CONFIGS = osp.join(ROOT, 'configs', 'lpt')

PRETRAIN_CFG = osp.join(CONFIGS, 'digits_pretrain_vit_tiny.py')
BASELINE_CFG = osp.join(CONFIGS, 'baseline_digits_linear_probe.py')
PHASE1_CFG = osp.join(CONFIGS, 'phase1_digits.py')
PHASE2_CFG = osp.join(CONFIGS, 'phase2_digits.py')

#: The metrics of the table, as logged by LongTailAccuracy, and their titles.
METRICS = (('long_tail/top1', 'top-1'), ('long_tail/class_mean', 'class mean'),
           ('long_tail/many', 'many'), ('long_tail/medium',
                                        'medium'), ('long_tail/few', 'few'))

#: Table rows: key, title, config.
MODELS = (
    ('baseline', 'baseline: linear probe (CE, plain sampling)', BASELINE_CFG),
    ('phase1', 'LPT phase 1 (shared prompt)', PHASE1_CFG),
    ('phase2', 'LPT phase 2 (+ prompt pool)', PHASE2_CFG),
)

# mmcv-lite lacks the compiled ops; nothing here uses them.
warnings.filterwarnings(
    'ignore', message='Fail to import ``MultiScaleDeformableAttention``')

TRAIN_LINE = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\]')
VAL_LINE = re.compile(r'Epoch\(val\)\s*\[(\d+)\]')
LOG_VALUE = re.compile(r'\b([\w/]+): (-?[\d.]+(?:e[-+]?\d+)?)')
METRIC_LINE = re.compile(r'^([\w/]+): (-?[\d.]+(?:e[-+]?\d+)?)$', re.M)


class DemoError(RuntimeError):
    """A stage of the demo failed."""


class Clock:
    """Elapsed wall time since the demo started."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.start

    def stamp(self) -> str:
        return f'[{self():6.1f}s]'


def _rel(path: str) -> str:
    """``path`` relative to the current directory when it lies below it."""
    rel = osp.relpath(path)
    return path if rel.startswith('..') else rel


def _summarise(line: str, max_epochs: Optional[int],
               state: dict) -> Optional[str]:
    """The progress line to show for a line of a child's log, if any.

    Validation lines are shown in full (metrics only); a training line is
    shown for about every fifth of the epochs.
    """
    values = dict(LOG_VALUE.findall(line))
    if TRAIN_LINE.search(line):
        epoch = int(TRAIN_LINE.search(line).group(1))
        step = max(1, (max_epochs or 5) // 5)
        if epoch == state.get('epoch') or (epoch % step and epoch != 1
                                           and epoch != max_epochs):
            return None
        state['epoch'] = epoch
        losses = ', '.join(f'{k} {float(v):.3f}' for k, v in values.items()
                           if k.startswith('loss'))
        total = f'/{max_epochs}' if max_epochs else ''
        lr = f'  lr {float(values["lr"]):.2e}' if 'lr' in values else ''
        return f'      epoch {epoch}{total}: {losses}{lr}'
    match = VAL_LINE.search(line)
    if match:
        metrics = ', '.join(f'{k.split("/")[-1]} {float(v):.1f}'
                            for k, v in values.items()
                            if k not in ('time', 'data_time'))
        return f'      val after epoch {match.group(1)}: {metrics}'
    return None


def run_child(args: Sequence[str],
              log_file: str,
              threads: int = 1,
              max_epochs: Optional[int] = None,
              echo=print) -> str:
    """Run ``python ARGS`` in the repository root; return its output.

    The full output (stdout and stderr) goes to ``log_file``; a summary
    (training progress, validation metrics) is echoed while it runs.

    Args:
        args (Sequence[str]): Arguments after the interpreter.
        log_file (str): Where the child's whole output is written.
        threads (int): ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` of the
            child; 0 keeps torch's default. Defaults to 1.
        max_epochs (int, optional): Shown in the progress lines.
        echo (callable): Receives the progress lines. Defaults to print.

    Raises:
        DemoError: The child exited with a non-zero status; the message
        holds the end of its output and the log file.
    """
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if threads > 0:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    os.makedirs(osp.dirname(log_file) or '.', exist_ok=True)
    cmd = [sys.executable, *map(str, args)]
    lines: List[str] = []
    state: dict = {}
    with open(log_file, 'w') as log:
        log.write('$ ' + ' '.join(cmd) + '\n')
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1)
        for line in proc.stdout:
            log.write(line)
            lines.append(line)
            shown = _summarise(line, max_epochs, state)
            if shown:
                echo(shown)
        returncode = proc.wait()
    if returncode != 0:
        tail = ''.join(lines[-40:])
        raise DemoError(f'`{" ".join(cmd)}` exited with status {returncode}.'
                        f' End of its output:\n{tail}\nFull log: {log_file}')
    return ''.join(lines)


def _wait(futures: Sequence[Future]) -> None:
    """Wait for every step; re-raise the first failure once all stopped.

    Steps already running are let finish (their logs stay whole); a failed
    step's error is raised after them.
    """
    errors = []
    for future in futures:
        try:
            future.result()
        except Exception as error:  # re-raised below
            errors.append(error)
    if errors:
        raise errors[0]


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint MMEngine recorded last in ``work_dir``."""
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        raise DemoError(f'{work_dir} has no `last_checkpoint` file: the '
                        'training run saved no checkpoint.')
    with open(record) as f:
        path = f.read().strip()
    if not osp.isabs(path):
        path = osp.join(ROOT, path)
    if not osp.isfile(path):
        raise DemoError(f'{record} names {path}, which does not exist.')
    return path


def parse_metrics(stdout: str) -> Dict[str, float]:
    """The ``name: value`` lines that ``tools/test.py`` prints last."""
    metrics = {k: float(v) for k, v in METRIC_LINE.findall(stdout)}
    missing = [k for k, _ in METRICS if k not in metrics]
    if missing:
        raise DemoError(f'tools/test.py printed no {missing}: is the '
                        "config's test_evaluator LongTailAccuracy?")
    return metrics


def _load_tool(name: str):
    """Import a script of ``tools/analysis_tools`` as a module."""
    path = osp.join(TOOLS, 'analysis_tools', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'_lpt_demo_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def count_parameters(config: str,
                     cfg_options: Optional[dict] = None) -> Tuple[int, int]:
    """(trainable, total) parameters of a config's model.

    Built with ``tools/analysis_tools/count_params.py`` (random weights,
    nothing loaded).
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.utils import register_all_modules

    count_params = _load_tool('count_params')
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    counts = count_params.count_by_component(count_params.build_model(cfg))
    trainable = sum(c[0] for c in counts.values())
    return trainable, trainable + sum(c[1] for c in counts.values())


def shot_groups(plot_tool, preds: str) -> str:
    """A sentence on the shot groups and the test set, from the configs."""
    import numpy as np

    counts, _, thresholds = plot_tool.counts_from_config(PHASE1_CFG)
    counts = np.asarray(counts)
    many, few, few_inclusive = thresholds
    is_few = counts <= few if few_inclusive else counts < few
    is_many = counts > many
    medium = f'{few + 1}..{many}' if few_inclusive else f'{few}..{many}'
    few_text = f'<= {few}' if few_inclusive else f'< {few}'
    _, gt = plot_tool.load_predictions(preds)
    per_class = np.bincount(gt, minlength=len(counts))
    balanced = per_class.min() == per_class.max()
    return (f'Training split: {len(counts)} classes, {counts.sum()} images '
            f'({counts.max()} .. {counts.min()} per class); shot groups by '
            f'training images: many > {many} ({is_many.sum()} classes), '
            f'medium {medium} ({(~is_many & ~is_few).sum()}), few {few_text} '
            f'({is_few.sum()}). Test split: {len(gt)} images' +
            (f', {per_class[0]} per class, so top-1 = class mean'
             if balanced else ''))


def max_epochs_of(config: str, cfg_options: dict) -> int:
    """``train_cfg.max_epochs`` of a config after ``cfg_options``."""
    from mmengine.config import Config

    cfg = Config.fromfile(config)
    cfg.merge_from_dict(cfg_options)
    return int(cfg.train_cfg.max_epochs)


def format_table(rows: Sequence[dict]) -> str:
    """The markdown table of the results."""
    header = ['model'] + [title for _, title in METRICS
                          ] + ['trainable params', 'total params']
    lines = [
        '| ' + ' | '.join(header) + ' |',
        '|' + '---|' + '---:|' * (len(header) - 1)
    ]
    for row in rows:
        cells = [row['title']]
        cells += [f'{row["metrics"][key]:.2f}' for key, _ in METRICS]
        cells += [f'{row["trainable_params"]:,}', f'{row["total_params"]:,}']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def _option_args(options: dict) -> List[str]:
    return [f'{k}={v}' for k, v in options.items()]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Pretrain a tiny ViT, then LPT phase 1, phase 2 and a '
        'linear-probe baseline on DigitsLT (CPU, no download); print a table.')
    parser.add_argument(
        '--work-dir',
        default='work_dirs/demo',
        help='where every run, log, checkpoint and figure goes '
        '(default: work_dirs/demo)')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='randomness.seed of every training run (default: 0)')
    parser.add_argument(
        '--quick',
        action='store_true',
        help='smoke mode: 1 epoch per stage (seconds, not minutes); the '
        'accuracies mean nothing')
    parser.add_argument(
        '--threads',
        type=int,
        default=1,
        help='torch threads of every child process (OMP_NUM_THREADS); the '
        'tiny ViT gains nothing from more, and one thread is robust on a '
        'busy machine. 0 keeps torch\'s default (default: 1)')
    parser.add_argument(
        '--jobs',
        type=int,
        default=2,
        help='steps run at the same time where they do not depend on each '
        'other (baseline and phase 1; phase 2 and the first tests); each '
        'runs with --threads threads. Results do not depend on it '
        '(default: 2, for 2 cores)')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f'--jobs must be >= 1, got {args.jobs}.')
    if args.threads < 0:
        parser.error(f'--threads must be >= 0, got {args.threads}.')
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the demo; returns what ``results.json`` holds."""
    args = parse_args(argv)
    clock = Clock()
    work_dir = osp.abspath(args.work_dir)
    logs = osp.join(work_dir, 'logs')
    dirs = {
        name: osp.join(work_dir, name)
        for name in ('pretrain', 'baseline', 'phase1', 'phase2', 'figures')
    }
    seed = {'randomness.seed': args.seed}
    quick = {
        'train_cfg.max_epochs': 1,
        'train_cfg.val_interval': 1,
        'default_hooks.checkpoint.interval': 1,
    } if args.quick else {}

    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:  # whole lines, also from concurrent steps
            print(text, flush=True)

    num_stages = 6

    def train(pool: Optional[ThreadPoolExecutor], step: int, name: str,
              config: str, what: str, options: dict) -> Optional[Future]:
        """Announce a training step, then run it (in ``pool`` if given)."""
        options = {**seed, **options, **quick}
        max_epochs = max_epochs_of(config, options)
        plural = 's' if max_epochs > 1 else ''
        say(f'{clock.stamp()} [{step}/{num_stages}] {what}: '
            f'{_rel(config)}, {max_epochs} epoch{plural}')

        def progress(line: str) -> None:
            # tell concurrent steps apart
            say(f'      {name}: {line.strip()}' if args.jobs > 1 else line)

        def run() -> None:
            start = clock()
            run_child([
                'tools/train.py', config, '--work-dir', dirs[name],
                '--cfg-options', *_option_args(options)
            ], osp.join(logs, f'train_{name}.log'), args.threads, max_epochs,
                      progress)
            say(f'{clock.stamp()}       {name} done in {clock() - start:.1f} '
                f's -> {_rel(last_checkpoint(dirs[name]))}')

        if pool is None:
            run()
            return None
        return pool.submit(run)

    mode = ', quick mode' if args.quick else ''
    say(f'LPT demo on DigitsLT (seed {args.seed}{mode}); work dir '
        f'{_rel(work_dir)}; {args.jobs} step(s) at a time')
    train(None, 1, 'pretrain', PRETRAIN_CFG,
          'pretrain the tiny ViT on the balanced `pretrain` split', {})
    pretrained = last_checkpoint(dirs['pretrain'])
    backbone = {'model.backbone.init_cfg.checkpoint': pretrained}
    phase2_options = {**backbone, 'model.phase1_checkpoint': dirs['phase1']}
    model_options = {
        'baseline': backbone,
        'phase1': backbone,
        'phase2': phase2_options
    }
    checkpoints, preds, metrics = {}, {}, {}

    def test(key: str, title: str, config: str) -> None:
        full = last_checkpoint(dirs[key])
        prompts = osp.splitext(full)[0] + '_prompts.pth'
        # LPT models: test the small prompt-only file (+ the pretrained
        # backbone named by the config), as one would ship them.
        checkpoint = prompts if key != 'baseline' else full
        if not osp.isfile(checkpoint):
            raise DemoError(f'{checkpoint} was not written: is '
                            'PromptCheckpointHook in the config?')
        checkpoints[key] = {'full': full, 'tested': checkpoint}
        preds[key] = osp.join(dirs[key], 'preds.pkl')
        start = clock()
        out = run_child([
            'tools/test.py', config, checkpoint, '--work-dir',
            osp.join(dirs[key], 'test'), '--out', preds[key], '--cfg-options',
            *_option_args(model_options[key])
        ], osp.join(logs, f'test_{key}.log'), args.threads)
        metrics[key] = parse_metrics(out)
        say(f'{clock.stamp()}       {title}: top-1 '
            f'{metrics[key]["long_tail/top1"]:.2f}, few '
            f'{metrics[key]["long_tail/few"]:.2f} ({clock() - start:.1f} s, '
            f'{_rel(checkpoint)})')

    # Steps start as soon as what they need exists, up to --jobs at once:
    # baseline and phase 1 both need only the pretrained ViT, and the
    # first two tests need only their own training run.
    tests = {key: (key, title, config) for key, title, config in MODELS}
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        _wait([
            train(pool, 2, 'baseline', BASELINE_CFG,
                  'baseline: linear probe of the frozen tiny ViT', backbone),
            train(pool, 3, 'phase1', PHASE1_CFG,
                  'LPT phase 1 (frozen tiny ViT)', backbone)
        ])
        phase2 = train(pool, 4, 'phase2', PHASE2_CFG,
                       'LPT phase 2 from the phase-1 work dir',
                       phase2_options)
        say(f'{clock.stamp()} [5/{num_stages}] tools/test.py on the test '
            'split')
        early = [pool.submit(test, *tests[key]) for key in tests
                 if key != 'phase2']
        _wait([phase2])
        _wait(early + [pool.submit(test, *tests['phase2'])])

    rows = []
    for key, title, config in MODELS:
        trainable, total = count_parameters(config, model_options[key])
        rows.append(
            dict(
                key=key,
                title=title,
                config=osp.relpath(config, ROOT),
                checkpoint=checkpoints[key]['tested'],
                preds=preds[key],
                metrics=metrics[key],
                trainable_params=trainable,
                total_params=total))

    say(f'{clock.stamp()} [6/{num_stages}] figures '
        '(tools/analysis_tools/plot_per_class.py)')
    figures = {
        'per_class_accuracy': osp.join(dirs['figures'],
                                       'per_class_accuracy.png'),
        'class_counts': osp.join(dirs['figures'], 'class_counts.png'),
    }
    run_child([
        'tools/analysis_tools/plot_per_class.py', '--preds',
        *[preds[key] for key, _, _ in MODELS], '--labels',
        *['baseline (linear probe)', 'LPT phase 1', 'LPT phase 2'], '--config',
        PHASE1_CFG, '--title',
        f'DigitsLT test split, seed {args.seed}: per-class accuracy', '--out',
        figures['per_class_accuracy'], '--counts-out', figures['class_counts']
    ], osp.join(logs, 'plot_per_class.log'), args.threads)

    plot_tool = _load_tool('plot_per_class')
    wall = clock()
    table = format_table(rows)
    outputs = [
        ('pretrained tiny ViT', pretrained),
        *[(f'{title} checkpoint', checkpoints[key]['full'])
          for key, title, _ in MODELS],
        *[(f'{title} prompt-only checkpoint', checkpoints[key]['tested'])
          for key, title, _ in MODELS if key != 'baseline'],
        *[(f'{title} predictions', preds[key]) for key, title, _ in MODELS],
        ('figure: per-class accuracy vs training count',
         figures['per_class_accuracy']),
        ('figure: training class counts', figures['class_counts']),
        ('this table (markdown)', osp.join(work_dir, 'results.md')),
        ('this table (JSON)', osp.join(work_dir, 'results.json')),
        ('logs of every step', logs),
    ]
    groups = shot_groups(plot_tool, preds['phase1'])
    quick_note = (' (QUICK MODE: 1 epoch per stage, numbers meaningless)'
                  if args.quick else '')
    notes = (f'DigitsLT, seed {args.seed}{quick_note}, wall time '
             f'{wall:.0f} s. {groups}. LPT rows tested from their '
             'prompt-only checkpoints + the pretrained backbone.')

    def size(path: str) -> str:
        if osp.isdir(path) or not osp.exists(path):
            return ''
        kib = osp.getsize(path) / 1024
        return f' ({kib:,.0f} KiB)'

    output_lines = [
        f'- {what}: {_rel(path)}{size(path)}' for what, path in outputs
    ]
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(f'{table}\n\n{notes}\n\nOutputs:\n\n' +
                '\n'.join(output_lines) + '\n')
    results = dict(
        dataset='DigitsLT',
        seed=args.seed,
        quick=args.quick,
        wall_time_s=round(wall, 1),
        rows=rows,
        figures=figures,
        pretrained=pretrained,
        work_dir=work_dir,
        command=' '.join(['python tools/demo.py'] +
                         list(argv if argv is not None else sys.argv[1:])))
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)

    say(f'{clock.stamp()} done.\n')
    say(table)
    say(f'\n{notes}\n\nOutputs:')
    say('\n'.join(output_lines))
    return results


if __name__ == '__main__':
    try:
        main()
    except DemoError as error:
        print(f'\nDEMO FAILED: {error}', file=sys.stderr, flush=True)
        sys.exit(1)
