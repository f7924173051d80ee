"""Prompt-only files load like full checkpoints, by every loading path, or
fail naming the problem; checkpoints that lack trained tensors fail too."""
import copy

import pytest
import torch
from conftest import TINY_VIT as TINY  # noqa: E402
from mmengine.runner import load_checkpoint
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS

import lpt_mmpretrain  # noqa: F401
from lpt_mmpretrain.checkpoints import (CheckpointMismatchError,
                                        backbone_fingerprint,
                                        is_prompt_checkpoint,
                                        load_prompt_checkpoint,
                                        recorded_fingerprint, recorded_source,
                                        save_prompt_checkpoint,
                                        tensors_fingerprint)


def model_cfg(pretrained, phase=2, num_classes=5):
    cfg = dict(
        type='LPTClassifier',
        backbone=dict(
            type='LPTVisionTransformer',
            arch=TINY,
            img_size=32,
            patch_size=8,
            prompt_length=3,
            init_cfg=dict(type='Pretrained', checkpoint=str(pretrained))),
        head=dict(
            type='CosineClsHead',
            num_classes=num_classes,
            in_channels=32,
            loss=dict(type='CrossEntropyLoss')))
    if phase == 2:
        cfg.update(
            neck=dict(
                type='PromptPoolNeck', pool_size=4, prompt_length=2, top_k=2),
            share_blocks=2,
            allow_no_phase1=True)
    return cfg


def save_vit(path, seed):
    torch.manual_seed(seed)
    vit = VisionTransformer(arch=TINY, img_size=32, patch_size=8)
    torch.save(dict(state_dict=vit.state_dict()), path)
    return path


def trained(cfg, seed=1):
    """A model with pretrained backbone and non-default trained tensors."""
    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name == 'backbone.prompt' or not name.startswith('backbone.'):
                param.normal_()
    return model.eval()


def logits(model, images):
    with torch.no_grad():
        return model(images, mode='tensor')


@pytest.fixture
def images():
    torch.manual_seed(5)
    return torch.randn(3, 3, 32, 32)


@pytest.fixture
def pretrained(tmp_path):
    return save_vit(tmp_path / 'vit.pth', seed=0)


@pytest.mark.parametrize('phase', [1, 2])
def test_every_path_gives_the_full_models_logits(tmp_path, pretrained, images,
                                                 phase):
    cfg = model_cfg(pretrained, phase)
    model = trained(cfg)
    full, prompts = tmp_path / 'full.pth', tmp_path / 'full_prompts.pth'
    torch.save(dict(state_dict=model.state_dict()), full)
    save_prompt_checkpoint(model, str(prompts), meta=dict(classes='abcde'))
    expected = logits(model, images)

    ckpt = torch.load(prompts, weights_only=True)
    assert is_prompt_checkpoint(ckpt)
    assert not any(k.startswith('backbone.layers') for k in ckpt['state_dict'])
    assert recorded_fingerprint(ckpt) == backbone_fingerprint(model.backbone)
    assert recorded_source(ckpt) == str(pretrained)
    assert ckpt['meta']['dataset_meta'] == dict(classes=list('abcde'))

    # fresh models, never initialised: their backbones are random
    fresh = [MODELS.build(copy.deepcopy(cfg)).eval() for _ in range(3)]
    assert not torch.allclose(logits(fresh[0], images), expected)
    load_checkpoint(fresh[0], str(prompts))  # MMEngine (runner, get_model)
    fresh[1].load_state_dict(ckpt['state_dict'])  # plain torch, strict
    load_prompt_checkpoint(fresh[2], str(prompts))
    for other in fresh:
        torch.testing.assert_close(logits(other, images), expected)

    # the full file too, and a backbone already holding the weights is kept
    again = MODELS.build(copy.deepcopy(cfg)).eval()
    load_checkpoint(again, str(full))
    torch.testing.assert_close(logits(again, images), expected)
    load_checkpoint(again, str(prompts))
    torch.testing.assert_close(logits(again, images), expected)


def test_other_backbone_is_refused_naming_both(tmp_path, pretrained, images):
    cfg = model_cfg(pretrained)
    prompts = tmp_path / 'p.pth'
    model = trained(cfg)
    save_prompt_checkpoint(model, str(prompts))
    other_vit = save_vit(tmp_path / 'other_vit.pth', seed=7)
    other = MODELS.build(model_cfg(other_vit))
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(other, str(prompts))
    message = str(info.value)
    assert backbone_fingerprint(model.backbone) in message
    assert str(other_vit) in message and str(pretrained) in message


def test_missing_backbone_file_is_explained(tmp_path, pretrained):
    cfg = model_cfg(pretrained)
    prompts = tmp_path / 'p.pth'
    save_prompt_checkpoint(trained(cfg), str(prompts))
    model = MODELS.build(model_cfg(tmp_path / 'nowhere.pth'))
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        load_checkpoint(model, str(prompts))


def test_phase1_file_into_phase2_model_names_the_phase(tmp_path, pretrained):
    phase1 = trained(model_cfg(pretrained, phase=1))
    for kind in ('full', 'prompts'):
        path = tmp_path / f'{kind}.pth'
        if kind == 'full':
            torch.save(dict(state_dict=phase1.state_dict()), path)
        else:
            save_prompt_checkpoint(phase1, str(path))
        model = MODELS.build(model_cfg(pretrained, phase=2))
        with pytest.raises(
                CheckpointMismatchError,
                match="lacks 'neck.prompt'.*phase-1 checkpoint"):
            load_checkpoint(model, str(path))


def test_phase2_file_into_phase1_model_is_refused(tmp_path, pretrained):
    path = tmp_path / 'p2.pth'
    torch.save(
        dict(state_dict=trained(model_cfg(pretrained)).state_dict()), path)
    model = MODELS.build(model_cfg(pretrained, phase=1))
    with pytest.raises(CheckpointMismatchError, match='phase-2 checkpoint'):
        load_checkpoint(model, str(path))


def test_head_of_another_class_count_names_the_shape(tmp_path, pretrained):
    path = tmp_path / 'p.pth'
    save_prompt_checkpoint(trained(model_cfg(pretrained)), str(path))
    model = MODELS.build(model_cfg(pretrained, num_classes=7))
    with pytest.raises(
            CheckpointMismatchError,
            match=r"'head.fc.weight' has shape \(5, 32\).*"
            r'\(7, 32\).*trained for 5 classes'):
        load_checkpoint(model, str(path))


def test_plain_vit_checkpoint_is_not_an_lpt_checkpoint(pretrained):
    model = MODELS.build(model_cfg(pretrained, phase=1))
    vit = torch.load(pretrained, weights_only=True)['state_dict']
    state = {f'backbone.{k}': v for k, v in vit.items()}
    with pytest.raises(CheckpointMismatchError, match='shared prompt'):
        model.load_state_dict(state, strict=False)


def test_file_without_backbone_or_fingerprint_is_refused(pretrained):
    model = trained(model_cfg(pretrained))
    state = {
        k: v
        for k, v in model.state_dict().items()
        if not k.startswith('backbone.') or k == 'backbone.prompt'
    }
    with pytest.raises(CheckpointMismatchError, match='no fingerprint'):
        MODELS.build(model_cfg(pretrained)).load_state_dict(state)


def test_fingerprint_depends_on_every_value():
    tensors = dict(a=torch.zeros(3), b=torch.ones(2, 2))
    base = tensors_fingerprint(tensors)
    assert base == tensors_fingerprint(dict(reversed(list(tensors.items()))))
    changed = dict(tensors, b=torch.tensor([[1., 1.], [1., 1.0001]]))
    assert tensors_fingerprint(changed) != base
    assert tensors_fingerprint(dict(a=torch.zeros(3), c=torch.ones(2,
                                                                   2))) != base
    assert tensors_fingerprint(
        dict(a=torch.zeros(3, dtype=torch.float64), b=torch.ones(2,
                                                                 2))) != base


def test_export_from_full_checkpoint(tmp_path, pretrained, images):
    from lpt_mmpretrain.checkpoints import export_prompt_checkpoint
    cfg = model_cfg(pretrained)
    model = trained(cfg)
    full = tmp_path / 'epoch_3.pth'
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(epoch=3, iter=30, dataset_meta=dict(classes='abcde'))),
        full)
    out = tmp_path / 'epoch_3_prompts.pth'
    export_prompt_checkpoint(
        MODELS.build(copy.deepcopy(cfg)), str(full), str(out))
    meta = torch.load(out, weights_only=True)['meta']
    assert (meta['epoch'], meta['iter']) == (3, 30)
    assert meta['classes'] == list('abcde')
    fresh = MODELS.build(copy.deepcopy(cfg)).eval()
    load_checkpoint(fresh, str(out))
    torch.testing.assert_close(logits(fresh, images), logits(model, images))

    # a full checkpoint trained on another backbone cannot be exported
    other = MODELS.build(model_cfg(save_vit(tmp_path / 'o.pth', seed=9)))
    with pytest.raises(ValueError, match='is not the pretrained'):
        export_prompt_checkpoint(other, str(full), str(tmp_path / 'x.pth'))
