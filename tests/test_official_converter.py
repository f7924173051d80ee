"""tools/model_converters/lpt_official_to_mmpretrain.py on a tiny model in
the released LPT layout, checked against a re-implementation of the released
forward pass on the same weights."""
import argparse
import os
import os.path as osp
import pickle
import runpy
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import load_tool  # noqa: E402
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_checkpoint
from mmpretrain.registry import MODELS
from PIL import Image

import lpt_mmpretrain  # noqa: F401
from lpt_mmpretrain.checkpoints import (convert_official_state_dict,
                                        is_prompt_checkpoint,
                                        load_prompt_checkpoint,
                                        prompt_only_path)

_tool = load_tool('model_converters/lpt_official_to_mmpretrain')
convert_official_checkpoint = _tool.convert_official_checkpoint
load_official_checkpoint = _tool.load_official_checkpoint

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLI = osp.join(REPO, 'tools', 'model_converters',
               'lpt_official_to_mmpretrain.py')
OFFICIAL_CONFIG = osp.join(REPO, 'configs', 'lpt', 'phase2_places_official.py')

# A tiny model in the released layout: width C, L blocks, H heads, P prompt
# tokens, a pool of POOL entries over the last L - SHARE blocks.
C, L, H, MLP, P, POOL, SHARE, CLASSES, IMG, PATCH = (32, 4, 2, 64, 3, 5, 2, 7,
                                                     32, 8)
TOP_K = 2  # the config's (and the released code's) default
EPS = 1e-5  # nn.LayerNorm's default, which the released code uses


class _Unknown:
    """A type no allow-list knows."""


def official_state_dict(seed: int = 0,
                        img: int = IMG,
                        patch: int = PATCH) -> dict:
    """Random tensors under the released code's names and layouts."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, std=0.2, mean=0.):
        return torch.randn(*shape, generator=gen) * std + mean

    sd = {
        'cls_token': rand(1, 1, C),
        'pos_embed': rand(1, 1 + (img // patch)**2, C),
        'patch_embed.proj.weight': rand(C, 3, patch, patch, std=0.05),
        'patch_embed.proj.bias': rand(C),
        'norm.weight': rand(C, mean=1.),
        'norm.bias': rand(C),
    }
    for i in range(L):
        b = f'blocks.{i}.'
        sd.update({
            b + 'norm1.weight': rand(C, mean=1.),
            b + 'norm1.bias': rand(C),
            b + 'attn.qkv.weight': rand(3 * C, C),
            b + 'attn.qkv.bias': rand(3 * C),
            b + 'attn.proj.weight': rand(C, C),
            b + 'attn.proj.bias': rand(C),
            b + 'norm2.weight': rand(C, mean=1.),
            b + 'norm2.bias': rand(C),
            b + 'mlp.fc1.weight': rand(MLP, C),
            b + 'mlp.fc1.bias': rand(MLP),
            b + 'mlp.fc2.weight': rand(C, MLP),
            b + 'mlp.fc2.bias': rand(C),
        })
    sd.update({
        'prompt_learner.Prompt_Tokens': rand(L, P, C),
        'prompt_learner.Prompt_Tokens_pool': rand(POOL, L - SHARE, P, C),
        'prompt_learner.Prompt_Keys': rand(POOL, C),
        'prompt_learner.head.weight': rand(C, CLASSES),  # (C, classes)
    })
    return sd


def save_official(path, prefix='module.', extra=None, seed=0, **size):
    """Save as the released script does: DataParallel keys, its args."""
    official = official_state_dict(seed, **size)
    sd = {prefix + k: v for k, v in official.items()}
    checkpoint = dict(
        state_dict=sd,
        args=argparse.Namespace(epochs=90, base_lr=0.02, name='lpt'))
    checkpoint.update(extra or {})
    torch.save(checkpoint, path)
    return official


# ---------------------------------------------------------------------- #
# The released forward pass, written from the method description.
# ---------------------------------------------------------------------- #
def _ln(x, sd, name):
    return F.layer_norm(
        x, (C, ), sd[name + '.weight'], sd[name + '.bias'], eps=EPS)


def _block(x, sd, i):
    b = f'blocks.{i}.'
    B, N, _ = x.shape
    h = _ln(x, sd, b + 'norm1')
    qkv = F.linear(h, sd[b + 'attn.qkv.weight'], sd[b + 'attn.qkv.bias'])
    q, k, v = qkv.reshape(B, N, 3, H, C // H).permute(2, 0, 3, 1, 4)
    attn = ((q @ k.transpose(-2, -1)) * (C // H)**-0.5).softmax(dim=-1)
    out = (attn @ v).transpose(1, 2).reshape(B, N, C)
    x = x + F.linear(out, sd[b + 'attn.proj.weight'], sd[b + 'attn.proj.bias'])
    h = _ln(x, sd, b + 'norm2')
    h = F.gelu(F.linear(h, sd[b + 'mlp.fc1.weight'], sd[b + 'mlp.fc1.bias']))
    return x + F.linear(h, sd[b + 'mlp.fc2.weight'], sd[b + 'mlp.fc2.bias'])


def _features(images, sd, group_prompts=None):
    """CLS after the final norm; shared prompts before every block, group
    prompts (B, L - SHARE, P, C) too from block SHARE on, dropped after."""
    patch = sd['patch_embed.proj.weight'].shape[-1]
    x = F.conv2d(
        images,
        sd['patch_embed.proj.weight'],
        sd['patch_embed.proj.bias'],
        stride=patch)
    x = x.flatten(2).transpose(1, 2)  # (B, num_patches, C)
    B, N = x.shape[0], x.shape[1] + 1
    x = torch.cat([sd['cls_token'].expand(B, -1, -1), x], dim=1)
    x = x + sd['pos_embed']
    shared = sd['prompt_learner.Prompt_Tokens']
    for i in range(L):
        parts = [x, shared[i].expand(B, -1, -1)]
        if group_prompts is not None and i >= SHARE:
            parts.append(group_prompts[:, i - SHARE])
        x = _block(torch.cat(parts, dim=1), sd, i)[:, :N]
    return _ln(x, sd, 'norm')[:, 0]


def reference_logits(images, sd):
    query = _features(images, sd)  # the phase-1 feature
    keys = sd['prompt_learner.Prompt_Keys']
    sim = F.normalize(query, dim=1) @ F.normalize(keys, dim=1).t()
    idx = sim.topk(TOP_K, dim=1).indices  # (B, k)
    group = sd['prompt_learner.Prompt_Tokens_pool'][idx].mean(dim=1)
    feature = _features(images, sd, group)
    head = sd['prompt_learner.head.weight']  # (C, classes)
    return F.normalize(feature, dim=1) @ F.normalize(head, dim=0)


# ---------------------------------------------------------------------- #
def tiny_config(tmp_path,
                dst,
                eps=None,
                img=IMG,
                patch=PATCH,
                extra='') -> str:
    """phase2_places_official.py, shrunk to the tiny model (its LayerNorm
    eps kept unless ``eps`` is given)."""
    norm = '' if eps is None else f"norm_cfg=dict(type='LN', eps={eps}),"
    path = tmp_path / 'tiny_official.py'
    path.write_text(f"""
_base_ = [{OFFICIAL_CONFIG!r}]
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims={C}, num_layers={L},
                  num_heads={H}, feedforward_channels={MLP}),
        img_size={img}, patch_size={patch}, prompt_length={P},
        {norm}
        init_cfg=dict(type='Pretrained', checkpoint={str(dst)!r})),
    neck=dict(pool_size={POOL}, prompt_length={P}, top_k={TOP_K}),
    share_blocks={SHARE},
    head=dict(num_classes={CLASSES}, in_channels={C}),
    phase1_checkpoint={str(dst)!r})
""" + extra)
    return str(path)


def build(config: str):
    cfg = Config.fromfile(config)
    init_default_scope('mmpretrain')
    return MODELS.build(cfg.model).eval(), cfg


def model_logits(model, images):
    with torch.no_grad():
        return model.head(model.extract_feat(images))


def images(n=4):
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, IMG, IMG, generator=gen)


def run_cli(*argv):
    old = sys.argv
    sys.argv = [CLI, *argv]
    try:
        runpy.run_path(CLI, run_name='__main__')
    finally:
        sys.argv = old


@pytest.mark.parametrize('prefix', ['module.', ''])
def test_converted_model_matches_the_released_forward(tmp_path, capsys,
                                                      prefix):
    src, dst = tmp_path / 'LPT_places.pth', tmp_path / 'out' / 'lpt.pth'
    official = save_official(src, prefix=prefix)
    config = tiny_config(tmp_path, dst)
    run_cli(str(src), str(dst), '--config', config)
    assert 'Converted' in capsys.readouterr().out

    model, _ = build(config)
    load_checkpoint(model, str(dst), map_location='cpu', strict=True)
    x = images()
    expected = reference_logits(x, official)
    torch.testing.assert_close(
        model_logits(model, x), expected, atol=1e-5, rtol=0)
    # the layouts: (C, classes) transposed, prompts unchanged
    state = torch.load(dst, map_location='cpu')['state_dict']
    assert torch.equal(state['head.fc.weight'],
                       official['prompt_learner.head.weight'].t())
    assert torch.equal(state['neck.prompt'],
                       official['prompt_learner.Prompt_Tokens_pool'])
    assert torch.equal(state['neck.key'],
                       official['prompt_learner.Prompt_Keys'])
    assert torch.equal(state['backbone.prompt'],
                       official['prompt_learner.Prompt_Tokens'])

    # the prompt-only file next to it gives the same model
    prompts = prompt_only_path(str(dst))
    assert prompts == str(tmp_path / 'out' / 'lpt_prompts.pth')
    checkpoint = torch.load(prompts, map_location='cpu')
    assert is_prompt_checkpoint(checkpoint)
    assert not any(
        k.startswith('backbone.layers') for k in checkpoint['state_dict'])
    fresh, _ = build(config)
    load_prompt_checkpoint(fresh, prompts)
    torch.testing.assert_close(
        model_logits(fresh, x), expected, atol=1e-5, rtol=0)


def test_layer_norm_eps_matters(tmp_path):
    """The config's eps 1e-5 is the released one: 1e-6 moves the logits."""
    src, dst = tmp_path / 'LPT_places.pth', tmp_path / 'lpt.pth'
    official = save_official(src)
    convert_official_checkpoint(
        str(src), str(dst),
        build(tiny_config(tmp_path, dst))[1].model)
    model, _ = build(tiny_config(tmp_path, dst, eps=1e-6))
    load_checkpoint(model, str(dst), map_location='cpu', strict=True)
    x = images()
    diff = (model_logits(model, x) - reference_logits(x, official)).abs()
    assert diff.max() > 1e-5


def test_official_config():
    cfg = Config.fromfile(OFFICIAL_CONFIG)
    assert cfg.model.backbone.norm_cfg == dict(type='LN', eps=1e-5)
    assert cfg.model.head.num_classes == 365
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert evaluator.type == 'LongTailAccuracy'
        assert (evaluator.many_shot_thr, evaluator.few_shot_thr,
                evaluator.few_inclusive) == (100, 20, True)
    pipeline = cfg.test_dataloader.dataset.pipeline
    assert pipeline[0].type in ('LoadImageFromFile',
                                'CheckedLoadImageFromFile')
    assert [t.type
            for t in pipeline[1:]] == ['Resize', 'CenterCrop', 'PackInputs']
    assert pipeline[0].imdecode_backend == 'pillow'
    assert pipeline[1].scale == (256, 256)
    assert (pipeline[1].backend, pipeline[1].interpolation) == ('pillow',
                                                                'bilinear')
    assert pipeline[2].crop_size == 224
    assert cfg.val_dataloader.dataset.pipeline == pipeline


def test_namespace_is_allowed_for_this_loader_only(tmp_path):
    src = tmp_path / 'LPT_places.pth'
    save_official(src)
    assert len(load_official_checkpoint(str(src))) == len(
        official_state_dict())
    # the global allow-list was not widened
    assert argparse.Namespace not in torch.serialization.get_safe_globals()
    with pytest.raises(pickle.UnpicklingError):
        torch.load(src, map_location='cpu', weights_only=True)


def test_unknown_object_is_refused(tmp_path):
    src = tmp_path / 'LPT_places.pth'
    save_official(src, extra=dict(other=_Unknown()))
    with pytest.raises(
            pickle.UnpicklingError, match=r'not allow-listed .*_Unknown'):
        load_official_checkpoint(str(src))


def test_missing_and_unknown_prompt_keys_are_refused():
    sd = official_state_dict()
    del sd['prompt_learner.Prompt_Keys']
    with pytest.raises(ValueError, match='missing.*Prompt_Keys'):
        convert_official_state_dict(sd)
    sd = official_state_dict()
    sd['prompt_learner.extra'] = torch.zeros(1)
    with pytest.raises(ValueError, match='unknown prompt_learner keys'):
        convert_official_state_dict(sd)
    sd = official_state_dict()
    sd['prompt_learner.Prompt_Keys'] = torch.zeros(POOL, C + 1)
    with pytest.raises(ValueError, match='Prompt_Keys'):
        convert_official_state_dict(sd)


def test_architecture_read_from_the_checkpoint():
    _, arch = convert_official_state_dict(official_state_dict())
    assert arch == dict(
        num_layers=L,
        embed_dims=C,
        prompt_length=P,
        pool_size=POOL,
        share_blocks=SHARE,
        num_classes=CLASSES)


def test_config_that_does_not_fit_is_refused(tmp_path):
    src, dst = tmp_path / 'LPT_places.pth', tmp_path / 'lpt.pth'
    save_official(src)
    cfg = build(tiny_config(tmp_path, dst))[1]
    cfg.model.head.num_classes = CLASSES + 1
    with pytest.raises(ValueError, match=r"'num_classes': \(7, 8\)"):
        convert_official_checkpoint(str(src), str(dst), cfg.model)
    assert not dst.exists()


# Training counts of the tiny Places-LT: many (> 100), medium, and a class
# with exactly 20 images, few under the official convention.
TRAIN_COUNTS = (101, 100, 21, 20, 19, 2, 1)


def _released_test_transform():
    """The released evaluation's transform (torchvision, PIL)."""
    transforms = pytest.importorskip('torchvision.transforms')
    return transforms.Compose([
        transforms.Resize((256, 256)),
        transforms.CenterCrop((224, 224)),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.5] * 3, std=[0.5] * 3),
    ])


@pytest.mark.slow
def test_tools_test_gives_the_released_predictions(tmp_path):
    """tools/test.py with the official config on a tiny Places-LT split:
    the released transform and forward give the same scores."""
    transform = _released_test_transform()
    data_root = tmp_path / 'places'
    (data_root / 'img').mkdir(parents=True)
    rng = torch.Generator().manual_seed(2)
    test_lines, refs = [], []
    for label in range(CLASSES):
        for j in range(2):
            # a smooth random photo of another size than 256 x 256
            small = torch.rand(3, 30, 40, generator=rng)
            big = F.interpolate(
                small[None], size=(300, 410), mode='bilinear')[0]
            array = (big.permute(1, 2, 0) * 255).round().byte().numpy()
            name = f'img/{label}_{j}.jpg'
            Image.fromarray(array).save(data_root / name, quality=95)
            test_lines.append(f'{name} {label}')
            with Image.open(data_root / name) as im:
                refs.append(transform(im.convert('RGB')))
    (data_root / 'test.txt').write_text('\n'.join(test_lines) + '\n')
    (data_root / 'train.txt').write_text(''.join(
        f'img/{label}_0.jpg {label}\n'
        for label, count in enumerate(TRAIN_COUNTS) for _ in range(count)))

    src, dst = tmp_path / 'LPT_places.pth', tmp_path / 'lpt.pth'
    official = save_official(src, img=224, patch=32)
    dataset = dict(
        data_root=str(data_root),
        ann_file='test.txt',
        train_ann_file='train.txt',
        num_classes=CLASSES)
    config = tiny_config(
        tmp_path,
        dst,
        img=224,
        patch=32,
        extra=f"""
test_dataloader = dict(batch_size=4, num_workers=0, dataset={dataset!r})
""")
    run_cli(str(src), str(dst), '--config', config)

    preds = tmp_path / 'preds.pkl'
    proc = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'test.py'), config,
        str(dst), '--out',
        str(preds), '--work-dir',
        str(tmp_path / 'w')
    ],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          env=dict(
                              os.environ,
                              OMP_NUM_THREADS='1',
                              CUDA_VISIBLE_DEVICES=''))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert 'long_tail/few' in proc.stdout
    assert 'few <= 20' in proc.stdout + proc.stderr  # the convention logged

    with open(preds, 'rb') as f:
        results = pickle.load(f)
    scores = torch.stack([torch.as_tensor(r['pred_score']) for r in results])
    with torch.no_grad():
        logits = reference_logits(torch.stack(refs), official)
    expected = (20 * logits).softmax(dim=1)  # the head's pred_scale
    torch.testing.assert_close(scores, expected, atol=1e-5, rtol=0)
