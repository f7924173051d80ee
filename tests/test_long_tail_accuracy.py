import pytest
import torch
from mmengine.evaluator import Evaluator
from mmpretrain.registry import METRICS
from mmpretrain.structures import DataSample

import lpt_mmpretrain.evaluation.long_tail_accuracy as lta_module
from lpt_mmpretrain.evaluation import LongTailAccuracy

# Training counts: class 0 many-shot; 1, 2 medium; 3 sits on the few-shot
# threshold (medium for the papers, few for the official LPT evaluation);
# 4 few-shot.
COUNTS = [150, 100, 50, 20, 10]
# (gt, pred): per-class accuracy 75 / 50 / 0 / 100 / 100 %, 7 of 10 right.
PAIRS = [(0, 0), (0, 0), (0, 0), (0, 1), (1, 1), (1, 0), (2, 3), (3, 3),
         (3, 3), (4, 4)]


def _results(pairs=PAIRS):
    return [dict(pred_label=p, gt_label=g) for g, p in pairs]


@pytest.fixture
def logs(monkeypatch):
    lines = []
    monkeypatch.setattr(lta_module, 'print_log',
                        lambda msg, **kwargs: lines.append(msg))
    return lines


def test_papers_convention(logs):
    metric = LongTailAccuracy(cls_num_list=COUNTS)
    out = metric.compute_metrics(_results())
    assert out == pytest.approx(
        dict(top1=70., class_mean=65., many=75., medium=50., few=100.))
    assert any("papers' convention" in line and 'many 1 ' in line
               and 'medium 3 ' in line and 'few 1 ' in line for line in logs)


def test_official_lpt_convention(logs):
    metric = LongTailAccuracy(cls_num_list=COUNTS, few_inclusive=True)
    out = metric.compute_metrics(_results())
    assert out == pytest.approx(
        dict(top1=70., class_mean=65., many=75., medium=25., few=100.))
    assert any('official LPT' in line and 'few 2 ' in line for line in logs)


def test_custom_thresholds():
    metric = LongTailAccuracy(
        many_shot_thr=40, few_shot_thr=15, cls_num_list=COUNTS)
    out = metric.compute_metrics(_results())
    # many: 0, 1, 2 -> (75 + 50 + 0) / 3; medium: 3; few: 4
    assert out['many'] == pytest.approx(125. / 3)
    assert out['medium'] == pytest.approx(100.)
    assert out['few'] == pytest.approx(100.)


def test_absent_classes_and_empty_groups(logs):
    # class 4 (the only few-shot class) is not evaluated, class 2 neither:
    # 6 of 8 right; classes 0 / 1 / 3 at 75 / 50 / 100 %
    pairs = [pair for pair in PAIRS if pair[0] not in (2, 4)]
    out = LongTailAccuracy(
        cls_num_list=COUNTS).compute_metrics(_results(pairs))
    assert out == pytest.approx(
        dict(top1=75., class_mean=75., many=75., medium=75.))
    assert any('no evaluated class is few-shot' in line for line in logs)
    # all classes many-shot: medium and few are left out
    out = LongTailAccuracy(cls_num_list=[500] * 5).compute_metrics(_results())
    assert set(out) == {'top1', 'class_mean', 'many'}


def test_evaluator_with_data_samples_and_dataset_meta():
    samples = []
    for i, (gt, pred) in enumerate(PAIRS):
        sample = DataSample().set_gt_label(gt)
        if i % 2:  # scores only: the metric takes the argmax
            score = torch.zeros(5)
            score[pred] = 1.
            sample.set_pred_score(score)
        else:
            sample.set_pred_label(pred)
        samples.append(sample)
    evaluator = Evaluator(METRICS.build(dict(type='LongTailAccuracy')))
    evaluator.dataset_meta = dict(cls_num_list=COUNTS)
    evaluator.process(samples[:4])
    evaluator.process(samples[4:])
    out = evaluator.evaluate(len(samples))
    assert out == pytest.approx({
        'long_tail/top1': 70.,
        'long_tail/class_mean': 65.,
        'long_tail/many': 75.,
        'long_tail/medium': 50.,
        'long_tail/few': 100.
    })
    # an explicit cls_num_list wins over the data set's
    metric = LongTailAccuracy(cls_num_list=[500] * 5, prefix='lt')
    metric.dataset_meta = dict(cls_num_list=COUNTS)
    assert 'medium' not in metric.compute_metrics(_results())


def test_errors():
    with pytest.raises(ValueError, match='cls_num_list'):
        LongTailAccuracy().compute_metrics(_results())
    metric = LongTailAccuracy()
    metric.dataset_meta = dict(classes=('a', 'b'))
    with pytest.raises(ValueError, match='cls_num_list'):
        metric.compute_metrics(_results())
    with pytest.raises(ValueError, match='outside the 3 classes'):
        LongTailAccuracy(cls_num_list=[5, 5, 5]).compute_metrics(_results())
    with pytest.raises(ValueError, match='smaller than many_shot_thr'):
        LongTailAccuracy(many_shot_thr=20, few_shot_thr=20)
    with pytest.raises(KeyError, match='pred_label'):
        LongTailAccuracy().process(None, [dict(gt_label=torch.tensor([0]))])
