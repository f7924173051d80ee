"""tools/demo.py end to end (--quick smoke mode) and plot_per_class.py."""
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'

from conftest import DEMO_OUTPUT, load_tool  # noqa: E402


@pytest.fixture(scope='module')
def plot():
    return load_tool('analysis_tools/plot_per_class')


@pytest.fixture(scope='module')
def demo():
    return load_tool('demo')


def is_png(path):
    with open(path, 'rb') as f:
        return f.read(8) == PNG_SIGNATURE


def write_preds(path, pred, gt, num_classes=10):
    """A dump in the format of `tools/test.py --out` (DataSample dicts)."""
    results = [
        dict(
            num_classes=num_classes,
            sample_idx=i,
            gt_label=torch.tensor([g]),
            pred_label=torch.tensor([p]),
            pred_score=torch.full((num_classes, ), 1. / num_classes))
        for i, (p, g) in enumerate(zip(pred, gt))
    ]
    with open(path, 'wb') as f:
        pickle.dump(results, f)


# --------------------------------------------------------------------- #
# plot_per_class.py
# --------------------------------------------------------------------- #
def test_load_predictions(plot, tmp_path):
    write_preds(tmp_path / 'p.pkl', [1, 2, 3], [1, 2, 0])
    pred, gt = plot.load_predictions(str(tmp_path / 'p.pkl'))
    assert pred.tolist() == [1, 2, 3] and gt.tolist() == [1, 2, 0]

    with open(tmp_path / 'metrics.pkl', 'wb') as f:
        pickle.dump({'long_tail/top1': 50.}, f)
    with pytest.raises(ValueError, match='prediction dump'):
        plot.load_predictions(str(tmp_path / 'metrics.pkl'))
    with pytest.raises(FileNotFoundError, match='--out preds.pkl'):
        plot.load_predictions(str(tmp_path / 'missing.pkl'))


@pytest.mark.parametrize('num_classes', [10, 120])
def test_plot_cli_counts(plot, tmp_path, num_classes):
    """Both figures from --counts, few classes (lines) and many (dots)."""
    rng = np.random.RandomState(0)
    counts = [
        int(500 * 0.01**(i / (num_classes - 1))) for i in range(num_classes)
    ]
    gt = np.repeat(np.arange(num_classes), 5)
    for name in ('a', 'b'):
        write_preds(tmp_path / f'{name}.pkl',
                    np.where(rng.rand(gt.size) < 0.7, gt, 0), gt, num_classes)
    written = plot.main([
        '--preds',
        str(tmp_path / 'a.pkl'),
        str(tmp_path / 'b.pkl'), '--labels', 'model a', 'model b', '--counts',
        *map(str, counts), '--thresholds', '100', '20', '--out',
        str(tmp_path / 'acc.png'), '--counts-out',
        str(tmp_path / 'counts.png')
    ])
    assert written == [str(tmp_path / 'acc.png'), str(tmp_path / 'counts.png')]
    assert is_png(tmp_path / 'acc.png') and is_png(tmp_path / 'counts.png')


def test_plot_cli_errors(plot, tmp_path):
    with pytest.raises(SystemExit):  # nothing to draw
        plot.main(['--counts', '3', '2'])
    with pytest.raises(SystemExit):  # --out without --preds
        plot.main(['--counts', '3', '2', '--out', str(tmp_path / 'x.png')])
    write_preds(tmp_path / 'p.pkl', [0, 1], [0, 1], 2)
    with pytest.raises(SystemExit):  # one label per file
        plot.main([
            '--preds',
            str(tmp_path / 'p.pkl'), '--labels', 'a', 'b', '--counts', '3',
            '2', '--out',
            str(tmp_path / 'x.png')
        ])
    with pytest.raises(ValueError, match='PNG'):
        plot.main(
            ['--counts', '3', '2', '--counts-out',
             str(tmp_path / 'x.jpg')])


def test_per_class_figure_axes(monkeypatch):
    """Plain numbers on the log axis (2, 5, 10, not 2x10^0) and the legend
    below the axes, off the data."""
    import matplotlib

    from lpt_tools import plots
    drawn = {}

    def keep(fig, out):
        fig.canvas.draw()
        drawn['fig'] = fig

    monkeypatch.setattr(plots, '_save', keep)
    counts = np.array([40, 30, 20, 12, 8, 5, 3, 2])
    plots.plot_accuracy_vs_count(
        [np.linspace(0, 100, 8)] * 2, ['a', 'b'],
        counts,
        'x.png',
        thresholds=(20, 6, False))
    ax = drawn['fig'].axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all(label.isdigit() for label in labels), labels
    renderer = drawn['fig'].canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.y1 <= ax.get_window_extent(renderer).y0
    matplotlib.pyplot.close(drawn['fig'])


@pytest.mark.slow
def test_plot_from_config(tmp_path):
    """The CLI as the demo runs it: counts and groups from a config."""
    gt = np.repeat(np.arange(100), 2)
    write_preds(tmp_path / 'p.pkl', gt, gt, 100)
    proc = subprocess.run([
        sys.executable, 'tools/analysis_tools/plot_per_class.py', '--preds',
        str(tmp_path / 'p.pkl'), '--config',
        'configs/lpt/phase1_digit_pairs.py', '--out',
        str(tmp_path / 'a.png'), '--counts-out',
        str(tmp_path / 'c.png')
    ],
                          cwd=ROOT,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert is_png(tmp_path / 'a.png') and is_png(tmp_path / 'c.png')


# --------------------------------------------------------------------- #
# demo.py helpers
# --------------------------------------------------------------------- #
@pytest.mark.slow
def test_run_child_failure(demo, tmp_path):
    log = tmp_path / 'logs' / 'child.log'
    with pytest.raises(demo.DemoError) as info:
        demo.run_child(['-c', 'import sys; print("the reason"); sys.exit(3)'],
                       str(log))
    assert 'status 3' in str(info.value)
    assert 'the reason' in str(info.value) and 'the reason' in log.read_text()


def test_progress_line(demo, tmp_path, capsys):
    progress = demo.Progress(total=4., tty=False)
    assert 'ETA --:--' in progress.line()
    progress.start -= 30  # 30 s ago
    progress.run('a', 2., lambda: None)
    assert progress.fraction() == 0.5
    line = progress.line()
    assert line.startswith('[ 50%] 0:30 elapsed, ETA 0:30'), line
    progress.show()
    progress.show()  # the same 10% step: printed once
    assert capsys.readouterr().out.count('[ 50%]') == 1


def test_progress_counts_running_epochs(demo, tmp_path):
    run = tmp_path / '20260101_000000' / 'vis_data'
    run.mkdir(parents=True)
    (run / 'scalars.json').write_text(json.dumps({'epoch': 6}) + '\n')
    progress = demo.Progress(total=2., tty=False)
    seen = []
    progress.run('train', 2., lambda: seen.append(progress.fraction()),
                 str(tmp_path), 10)
    assert seen == [pytest.approx(0.5)] and progress.fraction() == 1.


def test_tables(demo):
    metrics = {
        'long_tail/top1': 20.,
        'long_tail/many': 30.,
        'long_tail/medium': 20.,
        'long_tail/few': 10.
    }
    runs = {
        seed: {
            key:
            dict(
                title=title, metrics={
                    k: v + seed
                    for k, v in metrics.items()
                })
            for key, title, _, _ in demo.MODELS
        }
        for seed in (0, 2)
    }
    text = demo.tables(runs)
    assert ('| 2 | LPT phase 1 (shared prompt) | 22.00 | 32.00 | 22.00 '
            '| 12.00 |') in text
    assert ('| LPT phase 2 (+ prompt pool) | 21.00 ± 1.4 '
            '| 31.00 ± 1.4 |') in text
    assert '16,640 | 233,024 |' in text  # phase 2: trainable, total


def test_arguments(demo):
    args = demo.parse_args([])
    assert args.jobs == 2 and args.seeds == [0] and not args.quick
    assert demo.parse_args(['--seeds', '1', '2']).seeds == [1, 2]
    with pytest.raises(SystemExit):
        demo.parse_args(['--jobs', '0'])


# --------------------------------------------------------------------- #
# the demo, end to end
# --------------------------------------------------------------------- #
@pytest.mark.slow
def test_demo_quick(user_tree):
    """The README's first command in its quick mode (the run of
    conftest.user_tree: seed 0, one step at a time)."""
    work_dir = user_tree / 'work_dirs' / 'demo'
    out = (user_tree / DEMO_OUTPUT).read_text()
    assert 'MultiScaleDeformableAttention' not in out
    assert '[100%]' in out and 'ETA' in out  # the progress line
    rows = [line for line in out.splitlines() if line.startswith('| ')]
    # per-seed table (header + 3 rows), mean table (header + 3 rows)
    assert len(rows) == 8, rows
    assert rows[1].startswith('| 0 | baseline')
    expected = {'baseline': 6500, 'LPT phase 1': 8320, 'LPT phase 2': 16640}
    for row, (title, trainable) in zip(rows[5:], expected.items()):
        cells = [c.strip() for c in row.strip('|').split('|')]
        assert cells[0].startswith(title)
        assert int(cells[5].replace(',', '')) == trainable
    assert 'QUICK MODE' in out

    results = json.loads((work_dir / 'results.json').read_text())
    assert results['seeds'] == [0] and results['quick'] is True
    rows = results['runs']['0']
    assert list(rows) == ['baseline', 'phase1', 'phase2']
    for key, row in rows.items():
        assert set(row['metrics']) >= {
            'long_tail/top1', 'long_tail/many', 'long_tail/medium',
            'long_tail/few'
        }
        assert Path(row['preds']).is_file()
        # the LPT rows were tested from their prompt-only checkpoints
        assert row['checkpoint'].endswith('_prompts.pth') == (
            key != 'baseline')
    seed_dir = work_dir / 'seed_0'
    assert is_png(seed_dir / 'per_class_accuracy.png')
    assert is_png(seed_dir / 'class_counts.png')
    assert (seed_dir / 'logs' / 'train_phase2.log').is_file()
    assert (work_dir / 'results.md').read_text().count('| ') >= 8
    # test images of the head, a middle and the tail class, named by class
    images = sorted(p.name for p in (work_dir / 'images').glob('*.png'))
    assert [n.split('_')[0] for n in images] == ['few', 'many', 'medium']
    assert all(is_png(work_dir / 'images' / n) for n in images)
    assert 'images/many_' in out  # the demo names them
