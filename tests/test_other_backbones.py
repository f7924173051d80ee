"""LPT's parts on other backbones: CNN / Swin baselines and other ViTs.

- configs/lt_baselines/: a fully trainable ResNet-50 or Swin-T with
  CosineClsHead + A-GCL on both streams + DualClassBalancedSampler +
  LongTailAccuracy. Every config builds; tiny versions train on DigitsLT.
- configs/lpt/*_vit_s / *_vit_l / *_deit_b / *_384: LPT on ViT-S, ViT-L,
  DeiT-B and 384-px input. Every config builds (on the meta device: no
  memory, same modules); tiny versions of each train phase 1 then phase 2.
"""
import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import on_meta
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS
from mmpretrain.utils import register_all_modules

from lpt_mmpretrain.engine import compat
from lpt_mmpretrain.engine.hooks import ClassCountsHook

# this process reads tools/train.py's checkpoints as our tools do
compat.install()

ROOT = Path(__file__).resolve().parents[1]
BASELINE_DIR = ROOT / 'configs' / 'lt_baselines'
LPT_DIR = ROOT / 'configs' / 'lpt'

BASELINES = {
    'resnet50_agcl_dual_cifar100_lt_r100.py': ('ResNet', 2048, 100, 'SGD'),
    'resnet50_agcl_dual_inat2018.py': ('ResNet', 2048, 8142, 'SGD'),
    'swin_tiny_agcl_dual_cifar100_lt_r100.py':
    ('SwinTransformer', 768, 100, 'AdamW'),
    'swin_tiny_agcl_dual_inat2018.py': ('SwinTransformer', 768, 8142, 'AdamW'),
}

# name: (embed_dims, num_layers, img_size of the model) of the full variant
VARIANTS = {
    'vit_s': (384, 12, 224),
    'vit_l': (1024, 24, 224),
    'deit_b': (768, 12, 224),
    '384': (768, 12, 384),
}
# Tiny stand-ins: other widths and depths, and for '384' a 48-px model
# loaded from a 32-px checkpoint (its position embedding is resized).
TINY_VARIANTS = {
    'vit_s':
    (dict(embed_dims=48, num_layers=4, num_heads=3,
          feedforward_channels=96), 32),
    'vit_l':
    (dict(embed_dims=64, num_layers=8, num_heads=4,
          feedforward_channels=128), 32),
    'deit_b':
    (dict(embed_dims=32, num_layers=4, num_heads=2,
          feedforward_channels=64), 32),
    '384':
    (dict(embed_dims=32, num_layers=4, num_heads=2,
          feedforward_channels=64), 48),
}


@pytest.fixture(autouse=True, scope='module')
def _scope_and_threads():
    register_all_modules(init_default_scope=True)
    # These models are tiny: one thread is as fast, and much faster when
    # other processes share the cores.
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def digits_batch(img_size=32, samples_per_stream=8, dual=True):
    """One training batch of DigitsLT, from the dual or a plain sampler."""
    if dual:
        sampler = dict(
            type='DualClassBalancedSampler',
            batch_size=samples_per_stream,
            num_samples_cls=2,
            seed=0)
        batch_size = 2 * samples_per_stream
    else:
        sampler = dict(type='DefaultSampler', shuffle=True, seed=0)
        batch_size = samples_per_stream
    loader = Runner.build_dataloader(
        dict(
            batch_size=batch_size,
            num_workers=0,
            dataset=dict(
                type='DigitsLT',
                split='train',
                img_size=img_size,
                pipeline=[dict(type='PackInputs')]),
            sampler=sampler,
            collate_fn=dict(type='default_collate')))
    counts, _ = ClassCountsHook.class_counts(loader.dataset)
    return next(iter(loader)), counts


def set_counts(model, counts):
    """What ClassCountsHook does before training."""
    model.head.set_class_counts(counts)


def params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


# --------------------------------------------------------------------- #
# Non-prompt baselines
# --------------------------------------------------------------------- #
@pytest.mark.parametrize('name', sorted(BASELINES))
def test_baseline_config_builds(name):
    backbone_type, width, num_classes, optim = BASELINES[name]
    cfg = Config.fromfile(BASELINE_DIR / name)
    # The backbone trains: no prompt-only checkpoints, but the class counts
    # and the stream schedule.
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert 'PromptCheckpointHook' not in hooks
    assert {'ClassCountsHook', 'DualStreamScheduleHook'} <= set(hooks)
    assert cfg.train_dataloader.sampler.type == 'DualClassBalancedSampler'
    assert cfg.train_dataloader.batch_sampler.type == 'DualStreamBatchSampler'
    assert 'batch_size' not in cfg.train_dataloader.sampler
    assert cfg.val_evaluator.type == 'LongTailAccuracy'
    assert cfg.optim_wrapper.optimizer.type == optim

    with on_meta():  # shapes only: no full-size weights
        model = MODELS.build(cfg.model)
    assert type(model.backbone).__name__ == backbone_type
    assert type(model.head).__name__ == 'CosineClsHead'
    assert model.head.ib_loss_module is not None
    assert tuple(model.head.fc.weight.shape) == (num_classes, width)
    assert all(p.requires_grad for p in model.backbone.parameters())
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.rand(1, 3, 224, 224, device='meta'))
    assert feats[-1].shape == (1, width)


def tiny_baseline(name, num_classes=10):
    """A baseline config with a tiny backbone of the same family."""
    cfg = Config.fromfile(BASELINE_DIR / name)
    if BASELINES[name][0] == 'ResNet':
        cfg.model.backbone.update(depth=18, stem_channels=16, base_channels=16)
        width = 128
    else:
        cfg.model.backbone.update(
            arch=dict(
                embed_dims=32, depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4]),
            img_size=32,
            window_size=2,
            pad_small_map=True)
        width = 256
    cfg.model.head.update(num_classes=num_classes, in_channels=width)
    return cfg


TINY_BASELINES = [
    'resnet50_agcl_dual_cifar100_lt_r100.py', 'swin_tiny_agcl_dual_inat2018.py'
]


@pytest.mark.parametrize('name', TINY_BASELINES)
def test_tiny_baseline_dual_loss_trains_backbone(name):
    cfg = tiny_baseline(name)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    batch, counts = digits_batch()
    set_counts(model, counts)
    model.train()

    data = model.data_preprocessor(copy.deepcopy(batch), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cb', 'loss_ib'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    grads = [p.grad for p in model.backbone.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # the gradient reaches the first layer of the backbone
    first = next(model.backbone.parameters())
    assert first.grad.abs().sum() > 0
    model.zero_grad()

    # the config's optimizer (with its paramwise settings) updates it
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = params(model.backbone)
    log = model.train_step(copy.deepcopy(batch), optim_wrapper)
    assert torch.isfinite(log['loss'])
    after = params(model.backbone)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    # from the stem to the last stage (ResNet's zero-initialised residual
    # BN scales block the gradients of some convolutions at the first step)
    names = list(before)
    assert names[0] in changed and names[-1] in changed
    assert len(changed) > len(before) / 2


def test_dual_loss_schedule_is_backbone_independent():
    """loss_ib follows max(0, 0.5 (E - e) / E) on a ResNet as on a ViT."""
    cfg = tiny_baseline('resnet50_agcl_dual_cifar100_lt_r100.py')
    model = MODELS.build(cfg.model)
    batch, counts = digits_batch()
    set_counts(model, counts)
    model.train()
    data = model.data_preprocessor(copy.deepcopy(batch), True)

    def losses_at(epoch, max_epochs=10):
        model.head.set_train_progress(epoch, max_epochs)
        torch.manual_seed(1)  # same dropout, noise and BN batch for each
        with torch.no_grad():
            return model(**data, mode='loss')

    start, middle, last = losses_at(0), losses_at(5), losses_at(10)
    torch.testing.assert_close(start['loss_cb'], middle['loss_cb'])
    torch.testing.assert_close(start['loss_ib'], 2 * middle['loss_ib'])
    assert last['loss_ib'] == 0


def test_plain_sampler_ablation():
    """ib_loss=None and a plain sampler: one A-GCL loss over the batch."""
    cfg = tiny_baseline('resnet50_agcl_dual_cifar100_lt_r100.py')
    cfg.model.head.ib_loss = None
    model = MODELS.build(cfg.model)
    batch, counts = digits_batch(dual=False)
    set_counts(model, counts)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    log = model.train_step(batch, optim_wrapper)
    assert set(log) == {'loss'} and torch.isfinite(log['loss'])


def test_agcl_reduces_to_scaled_cross_entropy():
    """The docs' CE ablation: A-GCL without its extras is CE on s * z."""
    torch.manual_seed(0)
    z = torch.rand(6, 4) * 2 - 1  # cosine logits
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    for smoothing in (0., 0.1):
        ce = MODELS.build(
            dict(
                type='AsymmetricGCLLoss',
                cls_num_list=[50, 20, 5, 2],
                m=0.,
                s=20.,
                noise_mul=0.,
                gamma_pos=0.,
                gamma_neg=0.,
                label_smoothing=smoothing))
        torch.testing.assert_close(
            ce(z, y), F.cross_entropy(20 * z, y, label_smoothing=smoothing))


def test_resnet_baseline_runner(tmp_path):
    """One epoch through MMEngine's Runner: hooks, checkpoint, evaluation."""
    cfg = tiny_baseline('resnet50_agcl_dual_cifar100_lt_r100.py')
    digits = Config.fromfile(ROOT / 'configs/_base_/datasets/digits_lt.py')
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                'val_evaluator', 'test_evaluator'):
        cfg[key] = digits[key]
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg = dict(
        type='ResumableEpochBasedTrainLoop', max_epochs=1, val_interval=1)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.)]
    cfg.default_hooks.logger.interval = 5
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    runner = Runner.from_cfg(cfg)
    runner.train()

    loss = runner.model.head.loss_module
    assert loss.cls_num_list.tolist() == \
        runner.train_dataloader.dataset.metainfo['cls_num_list']
    ckpt = torch.load(tmp_path / 'epoch_1.pth', map_location='cpu')
    # the full checkpoint holds the trained backbone; no prompt-only file
    assert any(k.startswith('backbone.layer4') for k in ckpt['state_dict'])
    assert not list(tmp_path.glob('*_prompts.pth'))
    metrics = runner.val_loop.run()
    assert {'long_tail/top1', 'long_tail/many',
            'long_tail/few'} <= set(metrics)


# --------------------------------------------------------------------- #
# LPT on other ViTs
# --------------------------------------------------------------------- #
def variant_configs(name):
    return (Config.fromfile(LPT_DIR / f'phase1_places_{name}.py'),
            Config.fromfile(LPT_DIR / f'phase2_places_{name}.py'))


@pytest.mark.parametrize('name', sorted(VARIANTS))
def test_vit_variant_configs_build(name):
    width, depth, img_size = VARIANTS[name]
    cfg1, cfg2 = variant_configs(name)
    # phase 2 is phase 1 plus the pool: same backbone, head and data
    for key in ('backbone', 'head', 'data_preprocessor'):
        assert cfg2.model[key] == cfg1.model[key]
    with on_meta():
        phase1 = MODELS.build(cfg1.model)
        phase2 = MODELS.build(cfg2.model)

    for model in (phase1, phase2):
        bb = model.backbone
        assert (bb.embed_dims, bb.num_layers) == (width, depth)
        assert tuple(bb.prompt.shape) == (depth, 10, width)
        num_patches = (img_size // 16)**2
        assert tuple(bb.pos_embed.shape) == (1, 1 + num_patches, width)
        assert tuple(model.head.fc.weight.shape) == (365, width)
        trainable = {k for k, p in bb.named_parameters() if p.requires_grad}
        assert trainable == ({'prompt'} if model is phase1 else set())

    # share_blocks scales with the depth: the second half gets group prompts
    assert phase2.share_blocks == depth // 2
    neck = phase2.neck
    assert tuple(neck.prompt.shape) == (20, depth - depth // 2, 10, width)
    assert tuple(neck.key.shape) == (20, width)
    trainable = {k for k, p in phase2.named_parameters() if p.requires_grad}
    assert trainable == {'neck.prompt', 'neck.key', 'head.fc.weight'}


def test_deit_uses_imagenet_statistics():
    cfg1, _ = variant_configs('deit_b')
    assert cfg1.model.data_preprocessor.mean == [123.675, 116.28, 103.53]
    vit_s, _ = variant_configs('vit_s')
    assert vit_s.model.data_preprocessor.mean == [127.5, 127.5, 127.5]


def test_384_pipelines():
    cfg1, _ = variant_configs('384')
    train = cfg1.train_dataloader.dataset.pipeline
    assert dict(
        type='RandomResizedCrop',
        scale=384,
        backend='pillow',
        interpolation='bilinear') in train
    for loader in ('val_dataloader', 'test_dataloader'):
        assert dict(type='CenterCrop', crop_size=384) in \
            cfg1[loader].dataset.pipeline


def test_vit_s_config_fits_timm_vit_small(tmp_path):
    """'deit-small' is the shape of timm's ViT-S/16 (IN-21k weights)."""
    timm = pytest.importorskip('timm')
    torch.manual_seed(0)
    vit_s = timm.create_model(
        'vit_small_patch16_224', pretrained=False, num_classes=0)
    torch.save(vit_s.state_dict(), tmp_path / 'timm_vit_s.pth')
    cfg1, _ = variant_configs('vit_s')
    backbone = copy.deepcopy(cfg1.model.backbone)
    backbone.init_cfg.checkpoint = str(tmp_path / 'timm_vit_s.pth')
    model = MODELS.build(backbone)
    model.init_weights()  # converts the timm layout and checks every shape
    torch.testing.assert_close(model.cls_token, vit_s.cls_token)
    torch.testing.assert_close(model.layers[11].ffn.layers[1].weight,
                               vit_s.blocks[11].mlp.fc2.weight)


def save_vit(path, arch, img_size):
    torch.manual_seed(0)
    vit = VisionTransformer(arch=arch, img_size=img_size, patch_size=8)
    torch.save(dict(state_dict=vit.state_dict()), path)
    return vit


def test_pos_embed_resized_from_smaller_checkpoint(tmp_path):
    """What the 384 configs rely on: a 224-px checkpoint in a 384-px ViT."""
    arch = TINY_VARIANTS['384'][0]
    vit = save_vit(tmp_path / 'vit32.pth', arch, 32)
    model = MODELS.build(
        dict(
            type='LPTVisionTransformer',
            arch=arch,
            img_size=48,
            patch_size=8,
            prompt_length=2,
            init_cfg=dict(
                type='Pretrained', checkpoint=str(tmp_path / 'vit32.pth'))))
    model.init_weights()
    expected = resize_pos_embed(vit.pos_embed, (4, 4), (6, 6), 'bicubic', 1)
    assert model.pos_embed.shape == (1, 37, arch['embed_dims'])
    torch.testing.assert_close(model.pos_embed, expected)
    torch.testing.assert_close(model.layers[0].attn.qkv.weight,
                               vit.layers[0].attn.qkv.weight)


def tiny_variant(cfg, name, checkpoint):
    arch, img_size = TINY_VARIANTS[name]
    depth = VARIANTS[name][1]
    model = copy.deepcopy(cfg.model)
    model.backbone.update(
        arch=arch,
        img_size=img_size,
        patch_size=8,
        init_cfg=dict(type='Pretrained', checkpoint=str(checkpoint)))
    model.head.update(num_classes=10, in_channels=arch['embed_dims'])
    if model.get('neck'):
        # keep the config's share_blocks / num_layers ratio (6 by default)
        model.share_blocks = model.get('share_blocks',
                                       6) * arch['num_layers'] // depth
    return model


@pytest.mark.parametrize('name', sorted(TINY_VARIANTS))
def test_tiny_variant_phase1_then_phase2(name, tmp_path):
    arch, img_size = TINY_VARIANTS[name]
    save_vit(tmp_path / 'vit.pth', arch, 32)
    cfg1, cfg2 = variant_configs(name)
    batch, counts = digits_batch(img_size=img_size)

    # phase 1: the shared prompt and the head train, nothing else
    model1 = MODELS.build(tiny_variant(cfg1, name, tmp_path / 'vit.pth'))
    model1.init_weights()
    set_counts(model1, counts)
    optim_wrapper = build_optim_wrapper(model1, cfg1.optim_wrapper)
    before = params(model1)
    log = model1.train_step(copy.deepcopy(batch), optim_wrapper)
    assert {'loss_cb', 'loss_ib'} <= set(log)
    assert all(torch.isfinite(v) for v in log.values())
    after = params(model1)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {'backbone.prompt', 'head.fc.weight'}
    torch.save(dict(state_dict=model1.state_dict()), tmp_path / 'phase1.pth')

    # phase 2: loads phase 1, trains the pool, keys and head
    model_cfg = tiny_variant(cfg2, name, tmp_path / 'vit.pth')
    model_cfg.phase1_checkpoint = str(tmp_path / 'phase1.pth')
    model2 = MODELS.build(model_cfg)
    model2.init_weights()
    torch.testing.assert_close(model2.backbone.prompt, model1.backbone.prompt)
    assert model2.neck.prompt.shape[1] == \
        arch['num_layers'] - model2.share_blocks
    set_counts(model2, counts)
    optim_wrapper = build_optim_wrapper(model2, cfg2.optim_wrapper)
    before = params(model2)
    log = model2.train_step(copy.deepcopy(batch), optim_wrapper)
    assert {'loss_cb', 'loss_ib', 'loss_match'} <= set(log)
    assert all(torch.isfinite(v) for v in log.values())
    after = params(model2)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {'neck.prompt', 'neck.key', 'head.fc.weight'}
