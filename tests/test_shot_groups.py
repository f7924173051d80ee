"""Shot groups, per-class accuracy (lpt_mmpretrain.evaluation); a config's
counts and run results (the tools' lpt_tools)."""
import json

import numpy as np
import pytest

from lpt_mmpretrain.evaluation import (LongTailAccuracy, per_class_accuracy,
                                       shot_group_convention, shot_group_masks)
from lpt_tools.configs import counts_from_config
from lpt_tools.results import (read_test_metrics, summarise_seeds,
                               training_fraction)
from lpt_tools.tables import format_table


def test_shot_group_masks_both_conventions():
    counts = [150, 101, 100, 20, 19, 5]
    papers = shot_group_masks(counts, 100, 20)
    assert papers['many'].tolist() == [1, 1, 0, 0, 0, 0]
    assert papers['medium'].tolist() == [0, 0, 1, 1, 0, 0]
    assert papers['few'].tolist() == [0, 0, 0, 0, 1, 1]
    official = shot_group_masks(counts, 100, 20, few_inclusive=True)
    assert official['few'].tolist() == [0, 0, 0, 1, 1, 1]
    assert shot_group_convention(100, 20) == {
        'many': '> 100',
        'medium': '20..100',
        'few': '< 20'
    }
    assert shot_group_convention(100, 20, True)['medium'] == '21..100'
    with pytest.raises(ValueError, match='smaller'):
        shot_group_masks(counts, 20, 20)


def test_per_class_accuracy():
    gt = np.array([0, 0, 0, 0, 1, 1, 3])
    pred = np.array([0, 0, 1, 2, 1, 0, 3])
    acc = per_class_accuracy(pred, gt, 4)
    np.testing.assert_allclose(acc[[0, 1, 3]], [50., 50., 100.])
    assert np.isnan(acc[2])  # no test sample of class 2
    with pytest.raises(ValueError, match='outside'):
        per_class_accuracy(pred, gt, 3)


def test_metric_uses_the_same_groups():
    metric = LongTailAccuracy(
        many_shot_thr=2, few_shot_thr=1, cls_num_list=[5, 2, 0 + 1])
    metric.results = [
        dict(pred_label=p, gt_label=g)
        for p, g in [(0, 0), (1, 0), (1, 1), (0, 2)]
    ]
    out = metric.compute_metrics(metric.results)
    acc = per_class_accuracy([0, 1, 1, 0], [0, 0, 1, 2], 3)
    masks = shot_group_masks([5, 2, 1], 2, 1)
    for group in ('many', 'medium'):
        assert out[group] == pytest.approx(np.mean(acc[masks[group]]))
    assert out['top1'] == 50. and out['class_mean'] == pytest.approx(50.)


def test_counts_from_config():
    counts, classes, thresholds = counts_from_config(
        'configs/lpt/phase1_digit_pairs.py')
    assert len(counts) == 100 and sum(counts) == 1228
    assert classes[0] == '00' and thresholds == (20, 6, False)
    masks = shot_group_masks(counts, *thresholds)
    assert [int(masks[g].sum()) for g in ('many', 'medium', 'few')] == \
        [22, 41, 37]


def _mmengine_run(work_dir, stamp, test=None, scalars=()):
    run = work_dir / stamp
    (run / 'vis_data').mkdir(parents=True)
    if test is not None:
        (run / f'{stamp}.json').write_text(json.dumps(test))
    with open(run / 'vis_data' / 'scalars.json', 'w') as f:
        for record in scalars:
            f.write(json.dumps(record) + '\n')


def test_read_test_metrics(tmp_path):
    with pytest.raises(FileNotFoundError, match='tools/test.py'):
        read_test_metrics(str(tmp_path))
    _mmengine_run(tmp_path, '20260101_000000', {'long_tail/top1': 1.0})
    _mmengine_run(tmp_path, '20260101_000100', {
        'long_tail/top1': 77.5,
        'long_tail/few': 60,
        'note': 'text'
    })
    assert read_test_metrics(str(tmp_path)) == {
        'long_tail/top1': 77.5,
        'long_tail/few': 60.
    }


def test_training_fraction(tmp_path):
    assert training_fraction(str(tmp_path), 10) == 0.
    _mmengine_run(
        tmp_path,
        '20260101_000000',
        scalars=[
            {
                'loss': 1.,
                'epoch': 1,
                'iter': 10
            },
            {
                'loss': 1.,
                'epoch': 4,
                'iter': 40
            },
            {
                'long_tail/top1': 5.,
                'step': 4
            },  # a validation record
        ])
    assert training_fraction(str(tmp_path), 10) == pytest.approx(0.3)


def test_summarise_seeds_and_table():
    runs = [{'a': {'x': 1., 'y': 0.}}, {'a': {'x': 3., 'y': 0.}}]
    summary = summarise_seeds(runs, ['x', 'y'])
    mean, std, lo, hi = summary['a']['x']
    assert (mean, lo, hi) == (2., 1., 3.)
    assert std == pytest.approx(np.sqrt(2.))
    assert summarise_seeds(runs[:1], ['x'])['a']['x'][1] == 0.
    with pytest.raises(ValueError):
        summarise_seeds([], ['x'])
    assert format_table(['m', 'v'], [['a', '1.00']]).splitlines() == [
        '| m | v |', '|---|---:|', '| a | 1.00 |'
    ]
