import copy

import pytest
import torch
from conftest import TINY_VIT as TINY  # noqa: E402
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import lpt_mmpretrain  # noqa: F401
from lpt_mmpretrain.structures import STREAM_KEY

NUM_CLASSES = 5


def backbone_cfg(prompt_length=3):
    return dict(
        type='LPTVisionTransformer',
        arch=TINY,
        img_size=32,
        patch_size=8,
        prompt_length=prompt_length)


def head_cfg():
    return dict(
        type='CosineClsHead',
        num_classes=NUM_CLASSES,
        in_channels=32,
        loss=dict(
            type='AsymmetricGCLLoss',
            cls_num_list=[40, 20, 10, 5, 2],
            gamma_pos=0.,
            gamma_neg=4.),
        ib_loss=dict(
            type='AsymmetricGCLLoss',
            cls_num_list=[40, 20, 10, 5, 2],
            gamma_pos=0.5,
            gamma_neg=8.),
        ib_loss_weight=0.5)


def phase2_cfg(**kwargs):
    cfg = dict(
        type='LPTClassifier',
        backbone=backbone_cfg(),
        neck=dict(
            type='PromptPoolNeck', pool_size=4, prompt_length=2, top_k=2),
        head=head_cfg(),
        share_blocks=2,
        allow_no_phase1=True)
    cfg.update(kwargs)
    return cfg


def dual_samples(labels):
    samples = []
    for i, y in enumerate(labels):
        s = DataSample().set_gt_label(torch.tensor(y))
        s.set_metainfo({STREAM_KEY: i % 2})  # interleaved streams
        samples.append(s)
    return samples


def test_requires_phase1_checkpoint():
    cfg = phase2_cfg()
    cfg.pop('allow_no_phase1')
    with pytest.raises(ValueError, match='phase1_checkpoint'):
        MODELS.build(cfg)


def test_share_blocks_range():
    for bad in (-1, 4):
        with pytest.raises(ValueError, match='share_blocks'):
            MODELS.build(phase2_cfg(share_blocks=bad))


def test_neck_follows_backbone():
    model = MODELS.build(phase2_cfg())
    assert model.neck.prompt.shape == (4, 4 - 2, 2, 32)
    assert model.neck.key.shape == (4, 32)


def _pair():
    torch.manual_seed(0)
    shared = MODELS.build(phase2_cfg(shared_prefix=True))
    naive = MODELS.build(phase2_cfg(shared_prefix=False))
    naive.load_state_dict(shared.state_dict())
    return shared, naive


def test_shared_prefix_equals_naive_predict():
    shared, naive = _pair()
    shared.eval(), naive.eval()
    x = torch.randn(6, 3, 32, 32)
    feat_s, match_s = shared.extract_lpt(x)
    feat_n, match_n = naive.extract_lpt(x)
    torch.testing.assert_close(feat_s[0], feat_n[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(match_s, match_n, atol=1e-6, rtol=0)
    pred_s = shared.predict(x)
    pred_n = naive.predict(x)
    for a, b in zip(pred_s, pred_n):
        torch.testing.assert_close(
            a.pred_score, b.pred_score, atol=1e-6, rtol=0)


def test_shared_prefix_equals_naive_train_step():
    shared, naive = _pair()
    shared.train(), naive.train()
    x = torch.randn(8, 3, 32, 32)
    samples = dual_samples([0, 1, 2, 3, 4, 0, 1, 4])
    grads = []
    losses = []
    for model in (shared, naive):
        torch.manual_seed(1)  # same noise and dropout for both
        loss = model.loss(x, copy.deepcopy(samples))
        losses.append(loss)
        sum(loss.values()).backward()
        grads.append({
            n: p.grad.clone()
            for n, p in model.named_parameters() if p.grad is not None
        })
    assert set(losses[0]) == {'loss_cb', 'loss_ib', 'loss_match'}
    for key in losses[0]:
        torch.testing.assert_close(
            losses[0][key], losses[1][key], atol=1e-6, rtol=0)
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(
            grads[0][name], grads[1][name], atol=1e-6, rtol=0)


def test_gradients_reach_only_pool_keys_and_head():
    model = MODELS.build(phase2_cfg())
    model.train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {'neck.prompt', 'neck.key', 'head.fc.weight'}
    loss = model.loss(
        torch.randn(8, 3, 32, 32), dual_samples([0, 1, 2, 3, 4, 0, 1, 2]))
    sum(loss.values()).backward()
    for name, p in model.named_parameters():
        if name in trainable:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name


def test_match_loss_is_weighted_mean_of_selected_cosines():
    model = MODELS.build(phase2_cfg())
    model.eval()
    x = torch.randn(4, 3, 32, 32)
    samples = dual_samples([0, 1, 2, 3])
    _, match = model.extract_lpt(x)
    loss = model.loss(x, samples)
    weights = model.head.sample_weights(samples)
    expected = -0.5 * (weights * match).sum()
    torch.testing.assert_close(loss['loss_match'], expected)
    # first epoch: cb mean + 0.5 * ib mean
    cb, ib = match[0::2].mean(), match[1::2].mean()
    torch.testing.assert_close(loss['loss_match'], -0.5 * (cb + 0.5 * ib))


def _phase1_checkpoint(tmp_path, prompt_length=3):
    torch.manual_seed(3)
    phase1 = MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=backbone_cfg(prompt_length),
            head=head_cfg()))
    path = tmp_path / 'phase1.pth'
    torch.save(dict(state_dict=phase1.state_dict(), meta=dict()), path)
    return phase1, path


def test_loads_shared_prompt_and_head_from_phase1(tmp_path):
    phase1, path = _phase1_checkpoint(tmp_path)
    model = MODELS.build(phase2_cfg(phase1_checkpoint=str(path)))
    model.init_weights()
    torch.testing.assert_close(model.backbone.prompt, phase1.backbone.prompt)
    torch.testing.assert_close(model.head.fc.weight, phase1.head.fc.weight)
    assert not model.backbone.prompt.requires_grad

    # a work dir works through its last_checkpoint file
    (tmp_path / 'last_checkpoint').write_text(str(path))
    model = MODELS.build(phase2_cfg(phase1_checkpoint=str(tmp_path)))
    model.init_weights()
    torch.testing.assert_close(model.backbone.prompt, phase1.backbone.prompt)


def test_phase1_errors(tmp_path):
    model = MODELS.build(
        phase2_cfg(phase1_checkpoint=str(tmp_path / 'missing.pth')))
    with pytest.raises(FileNotFoundError, match='Train phase 1 first'):
        model.init_weights()

    _, path = _phase1_checkpoint(tmp_path, prompt_length=5)
    model = MODELS.build(phase2_cfg(phase1_checkpoint=str(path)))
    with pytest.raises(ValueError, match='backbone.prompt.*prompt_length'):
        model.init_weights()

    with pytest.raises(FileNotFoundError, match='last_checkpoint'):
        MODELS.build(phase2_cfg(
            phase1_checkpoint=str(tmp_path))).init_weights()
