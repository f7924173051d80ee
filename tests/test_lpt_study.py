"""tools/lpt_tools/study.py and tools/analysis_tools/lpt_study.py, cheaply:
no training run of their own (the grid reads finished runs; the pool
analysis reads the session's tiny DigitsLT phase-2 run)."""
import json

import numpy as np
import pytest
from conftest import REPO_ROOT, load_tool  # noqa: F401  (adds tools/)

from lpt_tools import study
from lpt_tools.plots import plot_grid, plot_pool_selection

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def test_parse_variant():
    assert study.parse_variant(['a', 'c.py',
                                'x.y=1']) == ('a', 'c.py', ['x.y=1'])
    with pytest.raises(ValueError, match='NAME CONFIG'):
        study.parse_variant(['c.py'])
    with pytest.raises(ValueError, match='KEY=VALUE'):
        study.parse_variant(['a', 'c.py', 'oops'])


def test_expand_options():
    out = study.expand_options(
        ['model.phase1_checkpoint={root}/p1/seed_{seed}', 'epochs=4'], '/r', 3)
    assert out == [
        'train_cfg.val_interval=1000', 'model.phase1_checkpoint=/r/p1/seed_3',
        'train_cfg.max_epochs=4', 'param_scheduler.1.T_max=3',
        'param_scheduler.1.end=4'
    ]
    with pytest.raises(ValueError, match='epochs=1'):
        study.expand_options(['epochs=1'], '/r', 0)


def _fake_run(work_dir, top1, few):
    run = work_dir / '20260101_000000' / 'vis_data'
    run.mkdir(parents=True)
    records = [{
        'loss': 1.0,
        'step': 1
    }, {
        'long_tail/top1': top1,
        'long_tail/many': 1.,
        'long_tail/medium': 2.,
        'long_tail/few': few,
        'step': 2
    }]
    (run / 'scalars.json').write_text('\n'.join(map(json.dumps, records)))


def test_grid_reads_finished_runs_and_summarises(tmp_path, capsys):
    values = {
        ('a', 0): (10, 5),
        ('a', 1): (12, 7),
        ('b', 0): (11, 8),
        ('b', 1): (14, 8)
    }
    for (name, seed), (top1, few) in values.items():
        _fake_run(tmp_path / name / f'seed_{seed}', top1, few)
    variants = [('a', 'no_such.py', []), ('b', 'no_such.py', ['x=1'])]
    # finished runs are read, not trained (the config does not exist)
    results = study.run_grid(variants, [0, 1], str(tmp_path), jobs=1)
    assert results['b'][1]['long_tail/top1'] == 14
    metrics = ('long_tail/top1', 'long_tail/few')
    rows = study.summarise_grid(results, metrics, ref='a')
    a, b = rows
    assert a['long_tail/top1'] == (11, pytest.approx(np.sqrt(2)))
    assert b['d_long_tail/top1'] == (1.5, pytest.approx(np.sqrt(0.5)))
    assert b['d_long_tail/few'] == (2.0, pytest.approx(np.sqrt(2)))
    table = study.format_grid(rows, metrics, ref='a')
    assert '| b | 2 | 12.50 ± 2.12 | 8.00 ± 0.00 | +1.50 ± 0.71 |' in table

    cli = load_tool('analysis_tools/lpt_study')
    out = tmp_path / 'diffs.png'
    cli.main([
        'grid', '--root',
        str(tmp_path), '--seeds', '0', '1', '--ref', 'a', '--variant', 'a',
        'no_such.py', '--variant', 'b', 'no_such.py', '--plot',
        str(out)
    ])
    assert '+1.50 ± 0.71' in capsys.readouterr().out
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_selection_purity():
    labels = np.repeat(np.arange(5), 4)
    assert study.selection_purity(labels + 10, labels) == pytest.approx(1.)
    assert study.selection_purity(np.zeros(20, int), labels) == 0.


def test_plots(tmp_path):
    share = np.random.RandomState(0).dirichlet(np.ones(10), size=100)
    plot_pool_selection(share, str(tmp_path / 'pool.png'))
    plot_grid(['x', 'y'], {'top1': [(1, .5), (-1, .2)]},
              str(tmp_path / 'g.png'), 'points')
    for name in ('pool.png', 'g.png'):
        assert (tmp_path / name).read_bytes()[:8] == PNG_SIGNATURE


def test_pool_usage(digits_runs):
    options = dict(o.split('=', 1) for o in digits_runs.phase2_options)
    use = study.pool_usage(
        str(REPO_ROOT / 'configs' / 'lpt' / 'phase2_digits.py'),
        digits_runs.phase2_full, options)
    picks, labels = use['picks'], use['labels']
    assert picks.shape == (len(labels), 2)  # phase2_digits.py: top_k=2
    assert picks.min() >= 0 and picks.max() < use['pool_size']
    assert (picks[:, 0] != picks[:, 1]).all()  # distinct entries
    assert use['key_cos'].shape == (use['pool_size'], ) * 2
    np.testing.assert_allclose(np.diag(use['key_cos']), 1, atol=1e-5)
    assert set(labels) == set(range(10))
