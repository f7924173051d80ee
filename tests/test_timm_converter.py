import importlib.util
import os.path as osp
import runpy
import sys

import pytest
import torch
from mmpretrain.models import VisionTransformer
from safetensors.torch import save_file
from timm.models.vision_transformer import VisionTransformer as TimmViT

from lpt_mmpretrain.checkpoints import convert_timm_vit, is_timm_vit_state_dict
from lpt_mmpretrain.models.backbones.lpt_vision_transformer import \
    LPTVisionTransformer

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLI = osp.join(REPO, 'tools', 'model_converters', 'timm_to_mmpretrain.py')
ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def load_cli():
    spec = importlib.util.spec_from_file_location('timm_to_mmpretrain', CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timm_vit(**kwargs):
    torch.manual_seed(0)
    cfg = dict(
        img_size=32,
        patch_size=8,
        embed_dim=32,
        depth=2,
        num_heads=2,
        mlp_ratio=2,
        num_classes=0)
    cfg.update(kwargs)
    model = TimmViT(**cfg).eval()
    # timm zero-inits biases, cls_token etc.: randomise every tensor so the
    # comparison checks every mapped key
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(std=0.2)
            if param.dim() == 1 and param.numel() == 32:  # norms / biases
                param.add_(1.)
    return model


def images(size=32):
    gen = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, size, size, generator=gen)


def timm_feature(model, x):
    with torch.no_grad():
        return model.forward_features(x)[:, 0]  # final norm is inside


def lpt_from(path, **kwargs):
    model = LPTVisionTransformer(
        arch=ARCH,
        img_size=32,
        patch_size=8,
        prompt_length=0,
        init_cfg=dict(type='Pretrained', checkpoint=str(path)),
        **kwargs)
    model.init_weights()
    return model


def test_cli_conversion_matches_timm(tmp_path, capsys):
    timm_model = timm_vit(num_classes=10)
    src = tmp_path / 'timm_vit.pth'
    dst = tmp_path / 'out' / 'mmpretrain_vit.pth'
    torch.save(timm_model.state_dict(), src)
    # run the script as `python timm_to_mmpretrain.py SRC DST` would
    argv = sys.argv
    sys.argv = [CLI, str(src), str(dst)]
    try:
        runpy.run_path(CLI, run_name='__main__')
    finally:
        sys.argv = argv
    assert 'Converted' in capsys.readouterr().out

    checkpoint = torch.load(dst, map_location='cpu')
    assert set(checkpoint) == {'state_dict', 'meta'}
    assert checkpoint['meta']['converted_from'] == 'timm'
    vit = VisionTransformer(arch=ARCH, img_size=32, patch_size=8)
    assert set(checkpoint['state_dict']) == set(vit.state_dict())

    x = images()
    model = lpt_from(dst)
    with torch.no_grad():
        feature = model(x)[0]
    torch.testing.assert_close(
        feature, timm_feature(timm_model, x), atol=1e-5, rtol=0)
    assert not any(p.requires_grad for p in model.parameters())

    # MMPretrain's own VisionTransformer loads the converted file strictly
    vit.load_state_dict(checkpoint['state_dict'], strict=True)
    vit.eval()
    with torch.no_grad():
        assert torch.equal(vit(x)[0], feature)


@pytest.mark.parametrize('wrapper', [None, 'state_dict', 'model'])
def test_direct_timm_loading_matches_timm(tmp_path, wrapper):
    timm_model = timm_vit()
    path = tmp_path / 'timm_vit.pth'
    state_dict = timm_model.state_dict()
    torch.save(state_dict if wrapper is None else {wrapper: state_dict}, path)
    x = images()
    with torch.no_grad():
        feature = lpt_from(path)(x)[0]
    torch.testing.assert_close(
        feature, timm_feature(timm_model, x), atol=1e-5, rtol=0)


def test_safetensors_direct_and_cli(tmp_path):
    timm_model = timm_vit()
    src = tmp_path / 'model.safetensors'
    save_file(timm_model.state_dict(), str(src))
    x = images()
    expected = timm_feature(timm_model, x)
    with torch.no_grad():
        torch.testing.assert_close(
            lpt_from(src)(x)[0], expected, atol=1e-5, rtol=0)
        dst = tmp_path / 'converted.pth'
        load_cli().main([str(src), str(dst)])
        torch.testing.assert_close(
            lpt_from(dst)(x)[0], expected, atol=1e-5, rtol=0)


def test_prompted_model_from_timm_and_resized_pos_embed(tmp_path):
    timm_model = timm_vit()
    path = tmp_path / 'timm_vit.pth'
    torch.save(timm_model.state_dict(), path)
    model = LPTVisionTransformer(
        arch=ARCH,
        img_size=48,
        patch_size=8,
        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    assert model.pos_embed.shape == (1, 1 + 36, 32)
    assert [n for n, p in model.named_parameters()
            if p.requires_grad] == ['prompt']
    assert model(images(48))[0].shape == (2, 32)


def test_layer_scale_and_pre_norm_mapping():
    timm_model = timm_vit(init_values=0.5, pre_norm=True)
    converted = convert_timm_vit(timm_model.state_dict())
    assert 'layers.0.attn.gamma1.weight' in converted
    assert 'layers.1.ffn.gamma2.weight' in converted
    assert 'pre_norm.weight' in converted
    vit = VisionTransformer(
        arch=ARCH,
        img_size=32,
        patch_size=8,
        layer_scale_init_value=0.5,
        pre_norm=True)
    vit.load_state_dict(converted, strict=True)
    vit.eval()
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(
            vit(x)[0], timm_feature(timm_model, x), atol=1e-5, rtol=0)


def test_head_dropped_and_fc_norm_mapped():
    state_dict = timm_vit(num_classes=5, global_pool='avg').state_dict()
    assert 'fc_norm.weight' in state_dict and 'head.weight' in state_dict
    state_dict['pre_logits.fc.weight'] = torch.zeros(32, 32)
    converted = convert_timm_vit(state_dict)
    assert not any(
        k.startswith(('head', 'pre_logits', 'fc_norm')) for k in converted)
    assert 'ln2.weight' in converted and 'ln1.weight' not in converted


def test_avg_pool_timm_model_refused_by_lpt(tmp_path):
    path = tmp_path / 'avg.pth'
    torch.save(timm_vit(global_pool='avg').state_dict(), path)
    with pytest.raises(ValueError, match="'ln1.weight'"):
        lpt_from(path)


@pytest.mark.parametrize('kwargs', [dict(reg_tokens=2), dict(qk_norm=True)])
def test_unmappable_keys_raise(kwargs):
    state_dict = timm_vit(**kwargs).state_dict()
    with pytest.raises(ValueError, match='Cannot convert'):
        convert_timm_vit(state_dict)


def test_is_timm_vit_state_dict():
    assert is_timm_vit_state_dict(timm_vit().state_dict())
    vit = VisionTransformer(arch=ARCH, img_size=32, patch_size=8)
    assert not is_timm_vit_state_dict(vit.state_dict())
    assert not is_timm_vit_state_dict({'conv.weight': torch.zeros(1)})


def test_cli_refuses_non_timm_checkpoint(tmp_path):
    vit = VisionTransformer(arch=ARCH, img_size=32, patch_size=8)
    src = tmp_path / 'mm.pth'
    torch.save(dict(state_dict=vit.state_dict()), src)
    with pytest.raises(ValueError, match='not a timm ViT checkpoint'):
        load_cli().main([str(src), str(tmp_path / 'dst.pth')])
    assert not (tmp_path / 'dst.pth').exists()


def test_npz_refused_with_hint(tmp_path):
    path = tmp_path / 'ViT-B_16.npz'
    path.write_bytes(b'')
    with pytest.raises(ValueError, match='npz.*timm.create_model'):
        load_cli().main([str(path), str(tmp_path / 'dst.pth')])
