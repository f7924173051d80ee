import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from lpt_mmpretrain.models.heads import cosine_cls_head
from lpt_mmpretrain.models.heads.cosine_cls_head import \
    CosineClsHead  # noqa: F401  (registers it)
from lpt_mmpretrain.structures import STREAM_KEY

COUNTS = [50, 20, 8, 3, 1]
AGCL = dict(type='AsymmetricGCLLoss', cls_num_list=COUNTS)
AGCL_IB = dict(
    type='AsymmetricGCLLoss', cls_num_list=COUNTS, gamma_pos=0.5, gamma_neg=8.)


class RecordingLoss(nn.Module):
    """Returns a fixed value and records what it was called with."""

    def __init__(self, value):
        super().__init__()
        self.value = value
        self.calls = []

    def forward(self, cls_score, label, **kwargs):
        self.calls.append((cls_score.detach().clone(), label.clone(), kwargs))
        return cls_score.sum() * 0 + self.value


def make_samples(labels, streams=None):
    samples = []
    for i, label in enumerate(labels):
        sample = DataSample().set_gt_label(label)
        if streams is not None:
            sample.set_metainfo({STREAM_KEY: streams[i]})
        samples.append(sample)
    return samples


def make_head(**kwargs):
    cfg = dict(type='CosineClsHead', num_classes=5, in_channels=8, loss=AGCL)
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def test_cosine_logits_no_bias():
    head = make_head().eval()
    assert head.fc.bias is None
    x = torch.randn(6, 8) * 5
    logits = head((torch.randn(6, 3), x))  # the last feature is used
    assert logits.shape == (6, 5)
    assert logits.abs().max() <= 1 + 1e-6
    w = head.fc.weight
    expected = (x / x.norm(dim=1, keepdim=True)) @ (
        w / w.norm(dim=1, keepdim=True)).T
    torch.testing.assert_close(logits, expected)


def test_dropout_only_in_train():
    head = make_head(dropout=0.5)
    x = torch.randn(16, 8)
    head.eval()
    assert torch.equal(head((x, )), head((x, )))
    head.train()
    torch.manual_seed(0)
    assert not torch.allclose(head((x, )), head((x, )))
    assert make_head().dropout.p == 0.1


def test_feature_shape_errors():
    head = make_head()
    with pytest.raises(ValueError, match='GlobalAveragePooling'):
        head((torch.randn(2, 8, 4, 4), ))
    with pytest.raises(ValueError, match=r'\(B, 8\)'):
        head((torch.randn(2, 7), ))


def test_predict_scores():
    head = make_head(pred_scale=10.).eval()
    x = torch.randn(4, 8)
    logits = head((x, ))
    preds = head.predict((x, ), make_samples([0, 1, 2, 3]))
    scores = torch.stack([p.pred_score for p in preds])
    torch.testing.assert_close(scores, F.softmax(10. * logits, dim=1))
    labels = torch.cat([p.pred_label for p in preds])
    assert labels.tolist() == logits.argmax(1).tolist()
    assert len(head.predict((x, ))) == 4  # without data samples


def test_single_stream_loss():
    head = make_head(cal_acc=True).train()
    x = torch.randn(6, 8)
    labels = [0, 1, 2, 3, 4, 0]
    torch.manual_seed(3)  # same dropout mask and noise in both computations
    losses = head.loss((x, ), make_samples(labels))
    assert set(losses) == {'loss', 'accuracy_top-1'}
    torch.manual_seed(3)
    logits = head((x, ))
    expected = head.loss_module(logits, torch.tensor(labels))
    torch.testing.assert_close(losses['loss'], expected)

    recording = RecordingLoss(1.)
    head = make_head(loss=recording)
    head.loss((x, ), make_samples(labels))
    (score, label, kwargs), = recording.calls
    assert score.shape == (6, 5) and label.tolist() == labels
    assert kwargs['avg_factor'] == 6


def test_dual_split_with_mock_losses():
    cb_loss, ib_loss = RecordingLoss(2.), RecordingLoss(3.)
    head = make_head(loss=cb_loss, ib_loss=ib_loss, dropout=0.).eval()
    x = torch.randn(6, 8)
    labels = [0, 1, 2, 3, 4, 2]
    streams = [1, 0, 0, 1, 1, 0]
    losses = head.loss((x, ), make_samples(labels, streams))
    assert set(losses) == {'loss_cb', 'loss_ib'}
    logits = head((x, ))
    cb_idx, ib_idx = [1, 2, 5], [0, 3, 4]
    (cb_score, cb_label, cb_kwargs), = cb_loss.calls
    (ib_score, ib_label, ib_kwargs), = ib_loss.calls
    torch.testing.assert_close(cb_score, logits[cb_idx])
    torch.testing.assert_close(ib_score, logits[ib_idx])
    assert cb_label.tolist() == [1, 2, 2]
    assert ib_label.tolist() == [0, 3, 4]
    assert cb_kwargs['avg_factor'] == 3 and ib_kwargs['avg_factor'] == 3
    assert losses['loss_cb'].item() == 2.
    assert losses['loss_ib'].item() == pytest.approx(0.5 * 3.)
    head.set_train_progress(5, 10)
    losses = head.loss((x, ), make_samples(labels, streams))
    assert losses['loss_ib'].item() == pytest.approx(0.25 * 3.)


def test_dual_split_with_agcl():
    head = make_head(loss=AGCL, ib_loss=AGCL_IB).train()
    head.loss_module.noise_mul = head.ib_loss_module.noise_mul = 0.
    x = torch.randn(8, 8, requires_grad=True)
    labels = [0, 1, 2, 3, 4, 2, 1, 0]
    streams = [0, 1, 1, 0, 1, 0, 0, 1]
    torch.manual_seed(7)
    losses = head.loss((x, ), make_samples(labels, streams))
    torch.manual_seed(7)
    logits = head((x, ))
    y = torch.tensor(labels)
    cb = torch.tensor(streams) == 0
    torch.testing.assert_close(losses['loss_cb'],
                               head.loss_module(logits[cb], y[cb]))
    torch.testing.assert_close(losses['loss_ib'],
                               0.5 * head.ib_loss_module(logits[~cb], y[~cb]))
    sum(losses.values()).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_weight_schedule():
    head = make_head(ib_loss=AGCL_IB)
    assert head.ib_weight == 0.5  # e = 0 before any call
    head.set_train_progress(0, 10)
    assert head.ib_weight == pytest.approx(0.5)
    head.set_train_progress(5, 10)
    assert head.ib_weight == pytest.approx(0.25)
    head.set_train_progress(9, 10)
    assert head.ib_weight == pytest.approx(0.5 / 10)
    head.set_train_progress(12, 10)
    assert head.ib_weight == 0.
    head = make_head(ib_loss=AGCL_IB, ib_loss_weight=1.)
    head.set_train_progress(1, 4)
    assert head.ib_weight == pytest.approx(0.75)
    with pytest.raises(ValueError, match='max_epochs > 0'):
        head.set_train_progress(0, 0)


def test_dual_needs_streams():
    head = make_head(ib_loss=AGCL_IB)
    with pytest.raises(ValueError, match='DualClassBalancedSampler'):
        head.loss((torch.randn(4, 8), ), make_samples([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r'2 x the sampler'):
        head.loss((torch.randn(3, 8), ),
                  make_samples([0, 1, 2], streams=[0, 0, 1]))


def test_streams_without_ib_loss_warn_once(monkeypatch):
    messages = []
    monkeypatch.setattr(cosine_cls_head, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    head = make_head()
    samples = make_samples([0, 1, 2, 3], streams=[0, 1, 0, 1])
    for _ in range(2):
        losses = head.loss((torch.randn(4, 8), ), samples)
        assert set(losses) == {'loss'}
    assert len(messages) == 1 and 'no ib_loss' in messages[0]


def test_sample_weights():
    head = make_head()
    single = head.sample_weights(make_samples([0, 1, 2, 3]))
    torch.testing.assert_close(single, torch.full((4, ), 0.25))
    head = make_head(ib_loss=AGCL_IB)
    head.set_train_progress(3, 10)
    streams = [1, 1, 0, 0, 1, 0]
    weights = head.sample_weights(make_samples([0] * 6, streams))
    cb = torch.tensor(streams) == 0
    assert weights.shape == (6, ) and weights.dtype == torch.float32
    torch.testing.assert_close(weights[cb], torch.full((3, ), 1 / 3))
    torch.testing.assert_close(weights[~cb], torch.full((3, ), 0.35 / 3))
    assert weights[cb].sum().item() == pytest.approx(1.)
    assert weights[~cb].sum().item() == pytest.approx(0.35)
    with pytest.raises(ValueError, match='DualClassBalancedSampler'):
        head.sample_weights(make_samples([0, 1]))


def test_constructor_errors():
    with pytest.raises(ValueError, match='dropout'):
        make_head(dropout=1.)
    with pytest.raises(ValueError, match='num_classes'):
        make_head(num_classes=0)
    with pytest.raises(ValueError, match='pred_scale'):
        make_head(pred_scale=0.)
    with pytest.raises(ValueError, match='ib_loss_weight'):
        make_head(ib_loss_weight=-0.1)


def test_end_to_end_resnet_dual_stream():
    torch.manual_seed(0)
    model = ImageClassifier(
        backbone=dict(
            type='ResNet', depth=18, stem_channels=8, base_channels=8),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='CosineClsHead',
            num_classes=5,
            in_channels=64,
            loss=AGCL,
            ib_loss=AGCL_IB),
        data_preprocessor=dict(type='ClsDataPreprocessor'))
    model.init_weights()
    model.train()
    inputs = torch.randn(4, 3, 32, 32)
    samples = make_samples([0, 4, 2, 1], streams=[1, 0, 0, 1])
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss_cb', 'loss_ib'}
    loss, _ = model.parse_losses(losses)
    loss.backward()
    assert torch.isfinite(loss)
    for param in (model.head.fc.weight, model.backbone.conv1.weight):
        assert param.grad is not None and torch.isfinite(param.grad).all()
        assert param.grad.abs().sum() > 0
    model.eval()
    preds = model(inputs, mode='predict')
    assert preds[0].pred_score.shape == (5, )


def test_unit_norm_init_by_default():
    head = MODELS.build(
        dict(type='CosineClsHead', num_classes=5, in_channels=8, loss=AGCL))
    torch.manual_seed(1)
    head.init_weights()
    # the released code: uniform in [-1, 1], renormalised per class vector
    torch.manual_seed(1)
    expected = torch.empty(5, 8).uniform_(-1, 1).renorm_(2, 0, 1e-5).mul_(1e5)
    torch.testing.assert_close(head.fc.weight.detach(), expected)
    torch.testing.assert_close(
        head.fc.weight.norm(dim=1), torch.ones(5), rtol=0, atol=1e-6)
    # also when the head is initialised as part of a classifier
    model = ImageClassifier(
        backbone=dict(
            type='ResNet', depth=18, stem_channels=8, base_channels=8),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='CosineClsHead', num_classes=5, in_channels=64, loss=AGCL))
    model.init_weights()
    torch.testing.assert_close(
        model.head.fc.weight.norm(dim=1), torch.ones(5), rtol=0, atol=1e-6)


def test_trunc_normal_init_is_an_option():
    # The former init: norms of about 0.02 * sqrt(768) = 0.55 at width 768.
    torch.manual_seed(0)
    head = make_head(
        in_channels=768,
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02))
    norms = head.fc.weight.norm(dim=1)
    assert 0.45 < norms.min() and norms.max() < 0.65
    torch.manual_seed(0)
    assert torch.allclose(
        make_head(in_channels=768).fc.weight.norm(dim=1), torch.ones(5))


def test_set_class_counts_reaches_the_losses():
    late = dict(type='AsymmetricGCLLoss')
    head = make_head(loss=late, ib_loss=dict(late, gamma_pos=0.5))
    taken = head.set_class_counts(COUNTS)
    assert taken == {'loss_module': True, 'ib_loss_module': True}
    for loss in (head.loss_module, head.ib_loss_module):
        assert loss.cls_num_list.tolist() == COUNTS
    # a loss built with its own counts keeps them
    head = make_head(loss=AGCL, ib_loss=late)
    taken = head.set_class_counts([5, 4, 3, 2, 1])
    assert taken == {'loss_module': False, 'ib_loss_module': True}
    assert head.loss_module.cls_num_list.tolist() == COUNTS
    assert head.ib_loss_module.cls_num_list.tolist() == [5, 4, 3, 2, 1]
    with pytest.raises(ValueError, match='counts of 5 classes'):
        head.set_class_counts([3, 2, 1])
    # losses without class counts are left alone
    head = make_head(loss=dict(type='CrossEntropyLoss'))
    assert head.set_class_counts(COUNTS) == {}


def test_loss_and_weights_read_the_streams_once(monkeypatch):
    calls = []
    get_streams = cosine_cls_head.get_streams

    def counting(*args, **kwargs):
        calls.append(1)
        return get_streams(*args, **kwargs)

    monkeypatch.setattr(cosine_cls_head, 'get_streams', counting)
    head = make_head(ib_loss=AGCL_IB, dropout=0.).eval()
    head.set_train_progress(3, 10)
    x = torch.randn(6, 8)
    samples = make_samples([0, 1, 2, 3, 4, 2], [1, 0, 0, 1, 1, 0])
    losses, weights = head.loss_and_weights((x, ), samples)
    assert len(calls) == 1
    torch.testing.assert_close(weights, head.sample_weights(samples))
    expected = head.loss((x, ), samples)
    assert set(losses) == set(expected) == {'loss_cb', 'loss_ib'}
    for key in losses:
        torch.testing.assert_close(losses[key], expected[key])


def test_lpt_step_reads_the_streams_once(monkeypatch):
    calls = []
    get_streams = cosine_cls_head.get_streams

    def counting(*args, **kwargs):
        calls.append(1)
        return get_streams(*args, **kwargs)

    tiny = dict(
        embed_dims=8, num_layers=2, num_heads=2, feedforward_channels=16)
    model = MODELS.build(
        dict(
            type='LPTClassifier',
            backbone=dict(
                type='LPTVisionTransformer',
                arch=tiny,
                img_size=16,
                patch_size=8,
                prompt_length=2),
            neck=dict(
                type='PromptPoolNeck', pool_size=2, prompt_length=2, top_k=1),
            head=dict(
                type='CosineClsHead',
                num_classes=5,
                in_channels=8,
                loss=AGCL,
                ib_loss=AGCL_IB),
            share_blocks=1,
            allow_no_phase1=True))
    monkeypatch.setattr(cosine_cls_head, 'get_streams', counting)
    samples = make_samples([0, 1, 2, 3], [0, 1, 1, 0])
    losses = model.loss(torch.randn(4, 3, 16, 16), samples)
    assert set(losses) == {'loss_cb', 'loss_ib', 'loss_match'}
    assert len(calls) == 1
