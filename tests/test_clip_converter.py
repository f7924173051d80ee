"""CLIP ViT image towers -> LPTVisionTransformer: same features as open_clip.

open_clip builds every model here from its config, with random weights: no
download. The default tests use a tiny tower; one test converts a whole
ViT-B-16 with the CLIP base config's backbone.
"""
import importlib.util
import os.path as osp
import warnings

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from safetensors.torch import save_file

import lpt_mmpretrain  # noqa: F401
from lpt_mmpretrain.checkpoints import (CLIP_PROJ_KEY, convert_clip_checkpoint,
                                        convert_clip_visual,
                                        load_clip_state_dict,
                                        split_clip_visual)
from lpt_mmpretrain.models.necks import CLIPProjectionNeck

open_clip = pytest.importorskip('open_clip')
from open_clip.transformer import QuickGELU, VisionTransformer  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLI = osp.join(REPO, 'tools', 'model_converters', 'clip_to_mmpretrain.py')
BASE_CFG = osp.join(REPO, 'configs', '_base_', 'models', 'lpt_clip_vit_b16.py')
WIDTH, LAYERS, HEADS, PATCH, SIZE, EMBED = 32, 2, 2, 8, 32, 16
ACTS = {
    'quickgelu': (QuickGELU, dict(type='mmpretrain.QuickGELU')),
    'gelu': (torch.nn.GELU, dict(type='GELU')),
}


def load_cli():
    spec = importlib.util.spec_from_file_location('clip_to_mmpretrain', CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def randomise(module: torch.nn.Module, seed: int = 0) -> None:
    """Random values in the tensors CLIP initialises to constants (biases
    zero, norms one), so a swapped or dropped key changes the output; the
    matrices keep their random init, so activations keep a trained model's
    scale and float32 rounding stays small."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.dim() != 1 or name == 'class_embedding':
                continue
            noise = torch.randn(param.shape, generator=gen)
            if name.endswith('weight'):  # LayerNorm scales
                param.copy_(1. + 0.1 * noise)
            else:
                param.copy_(0.02 * noise)


def tiny_tower(act: str = 'quickgelu', **kwargs) -> VisionTransformer:
    cfg = dict(
        image_size=SIZE,
        patch_size=PATCH,
        width=WIDTH,
        layers=LAYERS,
        heads=HEADS,
        mlp_ratio=4.,
        output_dim=EMBED,
        act_layer=ACTS[act][0])
    cfg.update(kwargs)
    tower = VisionTransformer(**cfg).eval()
    randomise(tower)
    return tower


def lpt_backbone(checkpoint=None, act='quickgelu', **kwargs):
    cfg = dict(
        type='LPTVisionTransformer',
        arch=dict(
            embed_dims=WIDTH,
            num_layers=LAYERS,
            num_heads=HEADS,
            feedforward_channels=4 * WIDTH),
        img_size=SIZE,
        patch_size=PATCH,
        prompt_length=0,
        pre_norm=True,
        norm_cfg=dict(type='LN', eps=1e-5),
        layer_cfgs=dict(act_cfg=ACTS[act][1]))
    if checkpoint is not None:
        cfg['init_cfg'] = dict(type='Pretrained', checkpoint=checkpoint)
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    model.init_weights()
    model.eval()  # VisionTransformer.train returns None: no chaining
    return model


def images(size=SIZE, num=2):
    return torch.randn(
        num, 3, size, size, generator=torch.Generator().manual_seed(1))


@torch.no_grad()
def clip_features(tower, x):
    """open_clip's ln_post output on the CLS token, and the embedding."""
    seen = {}
    hook = tower.ln_post.register_forward_hook(
        lambda m, i, o: seen.setdefault('ln_post', o))
    embedding = tower(x)
    hook.remove()
    post = seen['ln_post']
    return (post[:, 0] if post.dim() == 3 else post), embedding


@pytest.mark.parametrize('act', ['quickgelu', 'gelu'])
@pytest.mark.parametrize('whole_model', [True, False])
def test_converted_tower_gives_clips_features(tmp_path, act, whole_model):
    tower = tiny_tower(act)
    state = tower.state_dict()
    if whole_model:  # as in a CLIP model, next to a text tower
        state = {f'visual.{k}': v for k, v in state.items()}
        state['token_embedding.weight'] = torch.zeros(10, WIDTH)
        state['logit_scale'] = torch.tensor(4.6)
    src = str(tmp_path / 'clip.bin')
    torch.save(state, src)
    dst = str(tmp_path / 'lpt.pth')
    load_cli().main([src, dst, '--keep-proj'])

    x = images()
    want_feat, want_emb = clip_features(tower, x)
    backbone = lpt_backbone(dst, act)
    neck = CLIPProjectionNeck(
        WIDTH,
        EMBED,
        init_cfg=dict(type='Pretrained', checkpoint=dst, prefix='neck.'))
    neck.init_weights()
    with torch.no_grad():
        feat = backbone(x)
        emb = neck(feat)[0]
    torch.testing.assert_close(feat[0], want_feat, rtol=0, atol=1e-5)
    torch.testing.assert_close(emb, want_emb, rtol=0, atol=1e-5)
    assert not neck.projection.weight.requires_grad


def test_wrong_activation_changes_features(tmp_path):
    """The activation is not in the file: the test above can fail."""
    tower = tiny_tower('quickgelu')
    dst = str(tmp_path / 'lpt.pth')
    torch.save(convert_clip_checkpoint(tower.state_dict()), dst)
    with torch.no_grad():
        feat = lpt_backbone(dst, 'gelu')(images())[0]
    assert (feat - clip_features(tower, images())[0]).abs().max() > 1e-3


def test_prompted_backbone_and_pre_norm_layout(tmp_path):
    tower = tiny_tower()
    dst = str(tmp_path / 'lpt.pth')
    torch.save(convert_clip_checkpoint(tower.state_dict()), dst)
    backbone = lpt_backbone(dst, prompt_length=3)
    assert backbone.prompt.shape == (LAYERS, 3, WIDTH)
    assert backbone.patch_embed.projection.bias is None  # as CLIP's conv1
    torch.testing.assert_close(backbone.pre_norm.weight, tower.ln_pre.weight)
    torch.testing.assert_close(
        backbone.layers[1].attn.qkv.weight,
        tower.transformer.resblocks[1].attn.in_proj_weight)
    assert backbone.pre_norm.eps == backbone.ln1.eps == 1e-5


def test_safetensors_and_torchscript_sources(tmp_path):
    tower = tiny_tower()
    want = convert_clip_checkpoint(tower.state_dict())['state_dict']

    st = str(tmp_path / 'open_clip_model.safetensors')
    save_file(
        {
            f'visual.{k}': v.contiguous()
            for k, v in tower.state_dict().items()
        }, st)

    class Whole(torch.nn.Module):  # OpenAI ships a TorchScript CLIP model

        def __init__(self):
            super().__init__()
            self.visual = tower

        def forward(self, x):
            return self.visual(x)

    ts = str(tmp_path / 'ViT-B-16.pt')
    with warnings.catch_warnings():
        # A TracerWarning reaching pytest-xdist's controller would import
        # torch there (it imports each warning's category): 0.4 GB more.
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.jit.trace(Whole(), images(), check_trace=False).save(ts)
    for src in (st, ts):
        got = convert_clip_checkpoint(load_clip_state_dict(src))['state_dict']
        assert sorted(got) == sorted(want)
        for key in want:
            torch.testing.assert_close(got[key], want[key])


def test_training_checkpoint_with_module_prefix(tmp_path):
    tower = tiny_tower()
    src = str(tmp_path / 'epoch_32.pt')
    torch.save(
        dict(
            epoch=32,
            state_dict={
                f'module.visual.{k}': v
                for k, v in tower.state_dict().items()
            }), src)
    state = load_clip_state_dict(src)
    assert 'visual.conv1.weight' in state
    visual, left_out = split_clip_visual(state)
    assert left_out == [] and 'conv1.weight' in visual


def test_checkpoint_layout_and_meta():
    tower = tiny_tower(ls_init_value=0.1)
    ckpt = convert_clip_checkpoint(tower.state_dict(), keep_proj=True)
    state = ckpt['state_dict']
    assert all(k.startswith('backbone.') for k in state if k != CLIP_PROJ_KEY)
    torch.testing.assert_close(state[CLIP_PROJ_KEY], tower.proj.t())
    torch.testing.assert_close(state['backbone.layers.0.attn.gamma1.weight'],
                               tower.transformer.resblocks[0].ls_1.gamma)
    assert ckpt['meta'] == dict(
        converted_from='clip',
        source='',
        embed_dims=WIDTH,
        num_layers=LAYERS,
        patch_size=PATCH,
        img_size=SIZE,
        proj_dims=EMBED)
    assert CLIP_PROJ_KEY not in convert_clip_checkpoint(
        tower.state_dict())['state_dict']


def test_layer_scale_tower_matches_with_layer_scale_config(tmp_path):
    tower = tiny_tower(ls_init_value=0.1)
    randomise(tower, seed=3)
    dst = str(tmp_path / 'lpt.pth')
    torch.save(convert_clip_checkpoint(tower.state_dict()), dst)
    with torch.no_grad():
        feat = lpt_backbone(dst, layer_scale_init_value=0.1)(images())[0]
    torch.testing.assert_close(
        feat, clip_features(tower, images())[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize('change, first_key', [
    (lambda s: s.update({'attn_pool.query': torch.zeros(1)}),
     'attn_pool.query'),
    (lambda s: s.update(
        {'transformer.resblocks.0.attn.ln_inner.weight': torch.zeros(1)}),
     'transformer.resblocks.0.attn.ln_inner.weight'),
    (lambda s: s.pop('ln_post.weight'), 'ln_post.weight'),
    (lambda s: s.pop('conv1.weight'), 'conv1.weight'),
])
def test_bad_tower_names_first_key(change, first_key):
    state = tiny_tower().state_dict()
    change(state)
    with pytest.raises(ValueError, match=f"Key '{first_key}'"):
        convert_clip_visual(state)


@pytest.mark.parametrize('state, hint', [
    ({
        'blocks.0.attn.qkv.weight': torch.zeros(3),
        'cls_token': torch.zeros(1)
    }, 'timm ViT'),
    ({
        'vision_model.embeddings.class_embedding': torch.zeros(1)
    }, 'Hugging Face'),
    ({
        'visual.conv1.weight': torch.zeros(1),
        'visual.bn1.weight': torch.zeros(1)
    }, 'ResNet CLIP'),
    ({
        'token_embedding.weight': torch.zeros(1)
    }, 'text tower'),
])
def test_other_models_fail_with_hint(tmp_path, state, hint):
    src = str(tmp_path / 'other.pth')
    torch.save(state, src)
    with pytest.raises(ValueError, match=f"Key '.*'.*{hint}"):
        load_cli().main([src, str(tmp_path / 'out.pth')])
    assert not osp.exists(tmp_path / 'out.pth')


def test_keep_proj_without_proj_and_neck_errors(tmp_path):
    state = tiny_tower().state_dict()
    state.pop('proj')
    with pytest.raises(ValueError, match='no .proj.'):
        convert_clip_checkpoint(state, keep_proj=True)
    dst = str(tmp_path / 'lpt.pth')
    torch.save(convert_clip_checkpoint(state), dst)
    neck = CLIPProjectionNeck(
        WIDTH, EMBED, init_cfg=dict(type='Pretrained', checkpoint=dst))
    with pytest.raises(ValueError, match='--keep-proj'):
        neck.init_weights()
    torch.save(convert_clip_checkpoint(tiny_tower().state_dict(), True), dst)
    neck = CLIPProjectionNeck(
        WIDTH, 2 * EMBED, init_cfg=dict(type='Pretrained', checkpoint=dst))
    with pytest.raises(ValueError, match='out_channels, in_channels'):
        neck.init_weights()


def test_projection_in_an_image_classifier(tmp_path):
    """Phase-1 layout with the projection: ImageClassifier, neck slot."""
    tower = tiny_tower()
    dst = str(tmp_path / 'lpt.pth')
    torch.save(convert_clip_checkpoint(tower.state_dict(), True), dst)
    backbone = dict(
        type='LPTVisionTransformer',
        arch=dict(
            embed_dims=WIDTH,
            num_layers=LAYERS,
            num_heads=HEADS,
            feedforward_channels=4 * WIDTH),
        img_size=SIZE,
        patch_size=PATCH,
        prompt_length=0,
        pre_norm=True,
        norm_cfg=dict(type='LN', eps=1e-5),
        layer_cfgs=dict(act_cfg=dict(type='mmpretrain.QuickGELU')),
        init_cfg=dict(type='Pretrained', checkpoint=dst))
    model = MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=backbone,
            neck=dict(
                type='CLIPProjectionNeck',
                in_channels=WIDTH,
                out_channels=EMBED,
                init_cfg=dict(
                    type='Pretrained', checkpoint=dst, prefix='neck.')),
            head=dict(type='CosineClsHead', num_classes=3, in_channels=EMBED)))
    model.init_weights()
    model.eval()
    with torch.no_grad():
        emb = model.extract_feat(images())[0]
    torch.testing.assert_close(
        emb, clip_features(tower, images())[1], rtol=0, atol=1e-5)


def test_vit_b16_with_the_base_config():
    """A whole random open_clip ViT-B-16 (QuickGELU, as OpenAI's weights)
    against the backbone of configs/_base_/models/lpt_clip_vit_b16.py."""
    torch.manual_seed(0)
    clip = open_clip.create_model(
        'ViT-B-16', pretrained=None, force_quick_gelu=True)
    tower = clip.visual.eval()
    randomise(tower)
    # The image tower's keys only, and the backbone built on the meta device
    # and given the converted tensors: 0.6 GB less at the peak.
    visual = {
        k: v
        for k, v in clip.state_dict().items() if k.startswith('visual.')
    }
    del clip
    ckpt = convert_clip_checkpoint(visual, keep_proj=True)
    state = ckpt['state_dict']
    assert ckpt['meta']['img_size'] == 224
    assert ckpt['meta']['proj_dims'] == 512

    cfg = Config.fromfile(BASE_CFG).model.backbone
    cfg.pop('init_cfg')
    cfg['prompt_length'] = 0
    with torch.device('meta'):
        backbone = MODELS.build(cfg)
    backbone.eval()
    backbone.load_state_dict(
        {
            k[len('backbone.'):]: v
            for k, v in state.items() if k.startswith('backbone.')
        },
        strict=True,
        assign=True)
    assert not any(t.is_meta for t in backbone.state_dict().values())
    neck = CLIPProjectionNeck(768, 512)
    neck.projection.weight.data.copy_(state[CLIP_PROJ_KEY])

    x = images(224, num=1)
    want_feat, want_emb = clip_features(tower, x)
    with torch.no_grad():
        feat = backbone(x)
        emb = neck(feat)[0]
    torch.testing.assert_close(feat[0], want_feat, rtol=0, atol=1e-5)
    torch.testing.assert_close(emb, want_emb, rtol=0, atol=1e-5)
