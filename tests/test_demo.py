"""tools/demo.py end to end (--quick smoke mode) and plot_per_class.py."""
import importlib.util
import json
import pickle
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def load_tool(path):
    spec = importlib.util.spec_from_file_location(
        Path(path).stem + '_under_test', ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def plot():
    return load_tool('tools/analysis_tools/plot_per_class.py')


@pytest.fixture(scope='module')
def demo():
    return load_tool('tools/demo.py')


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
def test_per_class_accuracy(plot):
    gt = np.array([0, 0, 0, 0, 1, 1, 3])
    pred = np.array([0, 0, 1, 2, 1, 0, 3])
    acc = plot.per_class_accuracy(pred, gt, 4)
    np.testing.assert_allclose(acc[[0, 1, 3]], [50., 50., 100.])
    assert np.isnan(acc[2])  # no test sample of class 2
    with pytest.raises(ValueError, match='outside'):
        plot.per_class_accuracy(pred, gt, 3)


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


def test_counts_from_config(plot):
    counts, classes, thresholds = plot.counts_from_config(
        str(ROOT / 'configs/lpt/phase1_digits.py'))
    assert counts == [84, 65, 50, 38, 30, 23, 18, 14, 10, 8]
    assert classes == [str(i) for i in range(10)]
    assert thresholds == (60, 25, False)


# --------------------------------------------------------------------- #
# demo.py helpers
# --------------------------------------------------------------------- #
def test_summarise(demo):
    state = {}
    train = ('11/22 08:07:01 - mmengine - INFO - Epoch(train)  [8][10/21]  '
             'lr: 4.6700e-02  eta: 0:00:30  time: 0.0400  data_time: 0.0040'
             '  loss: 1.6030  loss_cb: 1.2740  loss_ib: 0.3290')
    line = demo._summarise(train, 40, state)
    assert line.strip() == ('epoch 8/40: loss 1.603, loss_cb 1.274, '
                            'loss_ib 0.329  lr 4.67e-02')
    assert demo._summarise(train, 40, state) is None  # same epoch again
    assert demo._summarise(train.replace('[8]', '[9]'), 40, state) is None
    val = ('Epoch(val) [10][5/5]    long_tail/top1: 76.0000  '
           'long_tail/few: 73.3333  data_time: 0.0049  time: 0.0235')
    assert demo._summarise(val, 40, state).strip() == \
        'val after epoch 10: top1 76.0, few 73.3'
    assert demo._summarise('some other line', 40, state) is None


def test_parse_metrics_and_table(demo):
    out = ('log line\nlong_tail/top1: 77.0\nlong_tail/class_mean: 77.0\n'
           'long_tail/many: 91.6\nlong_tail/medium: 75.5\n'
           'long_tail/few: 72.0\n')
    metrics = demo.parse_metrics(out)
    assert metrics['long_tail/few'] == 72.0
    with pytest.raises(demo.DemoError, match='long_tail/few'):
        demo.parse_metrics('long_tail/top1: 1.0\n')
    table = demo.format_table([
        dict(
            title='LPT phase 1',
            metrics=metrics,
            trainable_params=2560,
            total_params=217024)
    ])
    assert table.splitlines()[2] == ('| LPT phase 1 | 77.00 | 77.00 | 91.60 '
                                     '| 75.50 | 72.00 | 2,560 | 217,024 |')


def test_run_child_failure(demo, tmp_path):
    log = tmp_path / 'child.log'
    with pytest.raises(demo.DemoError) as info:
        demo.run_child(['-c', 'import sys; print("the reason"); sys.exit(3)'],
                       str(log),
                       echo=lambda _: None)
    assert 'status 3' in str(info.value)
    assert 'the reason' in str(info.value)
    assert 'the reason' in log.read_text()


def test_wait_lets_every_step_finish_then_raises(demo):
    started = threading.Event()
    finished = []

    def fail():
        started.wait(5)
        raise demo.DemoError('first step failed')

    def slow():
        started.set()
        time.sleep(0.2)
        finished.append('slow')

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(fail), pool.submit(slow)]
        with pytest.raises(demo.DemoError, match='first step failed'):
            demo._wait(futures)
    # the other step ran to its end before the error was raised
    assert finished == ['slow']
    demo._wait([])  # nothing to wait for


def test_jobs_argument(demo):
    assert demo.parse_args([]).jobs == 2
    assert demo.parse_args(['--jobs', '1']).jobs == 1
    with pytest.raises(SystemExit):
        demo.parse_args(['--jobs', '0'])


# --------------------------------------------------------------------- #
# the demo, end to end
# --------------------------------------------------------------------- #
@pytest.mark.timeout(600)
def test_demo_quick(tmp_path):
    work_dir = tmp_path / 'demo'
    proc = subprocess.run([
        sys.executable, 'tools/demo.py', '--quick', '--work-dir',
        str(work_dir), '--seed', '3'
    ],
                          cwd=ROOT,
                          capture_output=True,
                          text=True)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]

    # progress: one line per stage with the elapsed time
    for step in range(1, 7):
        assert re.search(rf'^\[\s*[\d.]+s\] \[{step}/6\]', out, re.M), out
    # one markdown table: header, rule, three rows of 5 metrics + 2 counts
    rows = [line for line in out.splitlines() if line.startswith('| ')]
    assert rows[0].startswith('| model | top-1 | class mean | many | '
                              'medium | few | trainable params |')
    assert len(rows) == 4, rows
    expected_trainable = {
        'baseline': 650,  # linear head 64 x 10 + 10
        'LPT phase 1': 2560,  # prompt 6 x 5 x 64 + cosine head 64 x 10
        'LPT phase 2': 10880,  # pool 10 x 3 x 5 x 64 + keys + head
    }
    for row, (title, trainable) in zip(rows[1:], expected_trainable.items()):
        cells = [c.strip() for c in row.strip('|').split('|')]
        assert cells[0].startswith(title)
        accuracies = [float(c) for c in cells[1:6]]
        assert all(0 <= a <= 100 for a in accuracies)
        assert int(cells[6].replace(',', '')) == trainable
        assert int(cells[7].replace(',', '')) > trainable
    assert 'QUICK MODE' in out and 'seed 3' in out

    results = json.loads((work_dir / 'results.json').read_text())
    assert results['seed'] == 3 and results['quick'] is True
    assert [r['key'] for r in results['rows']] == \
        ['baseline', 'phase1', 'phase2']
    for row in results['rows']:
        assert set(row['metrics']) >= {
            'long_tail/top1', 'long_tail/class_mean', 'long_tail/many',
            'long_tail/medium', 'long_tail/few'
        }
        assert Path(row['preds']).is_file()
    # the LPT rows were tested from their prompt-only checkpoints
    assert results['rows'][1]['checkpoint'].endswith('_prompts.pth')
    assert results['rows'][2]['checkpoint'].endswith('_prompts.pth')
    for png in results['figures'].values():
        assert Path(png).is_file() and is_png(png), png
        assert str(Path(png).relative_to(work_dir)) in out or png in out
    table_md = (work_dir / 'results.md').read_text()
    assert rows[1] in table_md
    assert (work_dir / 'logs' / 'train_phase2.log').is_file()
