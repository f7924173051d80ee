import pytest
import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS

from lpt_mmpretrain.models.backbones.lpt_vision_transformer import \
    LPTVisionTransformer

ARCH = dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)
L, P, C = 4, 3, 32
N = 1 + (32 // 8)**2  # CLS + 4x4 patches


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def build(**kwargs):
    cfg = dict(arch=ARCH, img_size=32, patch_size=8, prompt_length=P)
    cfg.update(kwargs)
    return LPTVisionTransformer(**cfg)


def images(batch=2, size=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, size, size, generator=gen)


def save_vit(path, **kwargs):
    """Save a randomly initialised MMPretrain ViT state dict and return it."""
    cfg = dict(arch=ARCH, img_size=32, patch_size=8)
    cfg.update(kwargs)
    vit = VisionTransformer(**cfg)
    vit.init_weights()
    state_dict = vit.state_dict()
    torch.save(state_dict, path)
    return vit, state_dict


def test_registered_and_shapes():
    model = MODELS.build(
        dict(
            type='LPTVisionTransformer',
            arch=ARCH,
            img_size=32,
            patch_size=8,
            prompt_length=P))
    assert isinstance(model, LPTVisionTransformer)
    assert model.prompt.shape == (L, P, C)
    x = images()
    tokens = model.embed(x)
    assert tokens.shape == (2, N, C)
    assert model.forward_blocks(tokens, 0, L).shape == (2, N, C)
    out = model(x)
    assert isinstance(out, tuple) and len(out) == 1
    assert out[0].shape == (2, C)


def test_prompt_length_zero_equals_vision_transformer():
    vit = VisionTransformer(
        arch=ARCH, img_size=32, patch_size=8, out_type='cls_token')
    vit.init_weights()
    vit.eval()
    model = build(prompt_length=0)
    assert model.prompt is None
    model.load_state_dict(vit.state_dict())
    x = images()
    with torch.no_grad():
        assert torch.equal(model(x)[0], vit(x)[0])
        # dynamic input size: the position embedding is resized the same way
        x48 = images(size=48)
        assert torch.equal(model(x48)[0], vit(x48)[0])


def test_forward_is_composition_of_pieces():
    model = build()
    x = images()
    with torch.no_grad():
        full = model(x)[0]
        tokens = model.embed(x)
        assert torch.equal(
            full, model.forward_final(model.forward_blocks(tokens, 0, L)))
        for k in range(L + 1):
            split = model.forward_blocks(
                model.forward_blocks(tokens, 0, k), k, L)
            assert torch.equal(split, model.forward_blocks(tokens, 0, L))


def test_prompts_inserted_and_removed_per_block():
    model = build()
    seen = []
    handles = [
        layer.register_forward_hook(lambda mod, inp, out: seen.append(
            (inp[0].shape[1], out.shape[1]))) for layer in model.layers
    ]
    model(images())
    assert seen == [(N + P, N + P)] * L

    seen.clear()
    extra = torch.randn(2, 2, 5, C)
    tokens = model.forward_blocks(model.embed(images()), 0, 2)
    out = model.forward_blocks(tokens, 2, L, extra_prompts=extra)
    assert out.shape == (2, N, C)
    assert seen == [(N + P, N + P)] * 2 + [(N + P + 5, N + P + 5)] * 2
    for handle in handles:
        handle.remove()


def test_each_block_sees_its_own_prompt():
    model = build()
    x = images()
    with torch.no_grad():
        base = model(x)[0]
        for i in range(L):
            saved = model.prompt[i].clone()
            # (a constant shift would be removed by the block's LayerNorm)
            model.prompt[i].add_(torch.randn(P, C))
            assert not torch.allclose(model(x)[0], base)
            model.prompt[i].copy_(saved)
        assert torch.equal(model(x)[0], base)


def test_prompt_receives_gradient_and_is_the_only_trainable():
    model = build()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ['prompt']
    assert sum(p.numel() for p in model.parameters()
               if p.requires_grad) == L * P * C
    # (a plain sum of a LayerNorm output has zero gradient)
    (model(images())[0] * torch.randn(C)).sum().backward()
    assert model.prompt.grad is not None
    assert model.prompt.grad.abs().sum() > 0
    assert all(p.grad is None for n, p in model.named_parameters()
               if n != 'prompt')


def test_not_frozen_is_trainable():
    model = build(frozen=False, drop_path_rate=0.5)
    assert all(p.requires_grad for p in model.parameters())
    model.train()
    assert all(m.training for m in model.modules())
    x = images()
    torch.manual_seed(0)
    a = model(x)[0]
    torch.manual_seed(1)
    b = model(x)[0]
    assert not torch.allclose(a, b)  # drop-path acts when not frozen


def test_frozen_backbone_stays_in_eval_mode():
    model = build(drop_rate=0.3, drop_path_rate=0.3)
    model.train()
    assert not any(m.training for m in model.modules())
    model.train(True)
    x = images()
    torch.manual_seed(0)
    a = model(x)[0]
    torch.manual_seed(1)
    b = model(x)[0]
    assert torch.equal(a, b)


def test_extra_prompts_used_by_blocks_from_start():
    model = build()
    x = images()
    extra = torch.randn(2, 2, 4, C, requires_grad=True)
    with torch.no_grad():
        prefix = model.forward_blocks(model.embed(x), 0, 2)
        plain = model.forward_blocks(prefix, 2, L)
    with_extra = model.forward_blocks(prefix, 2, L, extra_prompts=extra)
    assert not torch.allclose(plain, with_extra)
    with torch.no_grad():
        # block start + j uses extra_prompts[:, j]
        tokens = prefix
        for j, i in enumerate(range(2, L)):
            tokens = model.forward_blocks(
                tokens, i, i + 1, extra_prompts=extra[:, j:j + 1])
        assert torch.equal(tokens, with_extra)
        swapped = extra.flip(1)
        assert not torch.allclose(
            model.forward_blocks(prefix, 2, L, extra_prompts=swapped),
            with_extra)
    (model.forward_final(with_extra) * torch.randn(C)).sum().backward()
    assert extra.grad.abs().sum() > 0


def test_key_mask_equals_unpadded_prompts():
    # Per-sample extra prompts padded to the longest and masked give each
    # sample what its unpadded prompts give; padding values do not matter.
    model = build().eval()
    tokens = model.forward_blocks(model.embed(images(3)), 0, 1)
    lengths = [2, 4, 1]  # per sample, in every block
    extra = torch.randn(3, L - 1, 4, C)
    mask = torch.zeros(3, L - 1, 4, dtype=torch.bool)
    for b, n in enumerate(lengths):
        mask[b, :, :n] = True
        extra[b, :, n:] = 1e3  # padding: masked out of the attention
    with torch.no_grad():
        out = model.forward_blocks(tokens, 1, L, extra, key_mask=mask)
        for b, n in enumerate(lengths):
            want = model.forward_blocks(tokens[b:b + 1], 1, L,
                                        extra[b:b + 1, :, :n])
            torch.testing.assert_close(out[b:b + 1], want, atol=1e-5, rtol=0)
        # A block masked for no sample runs as MMPretrain's layer.
        full = torch.ones(3, L - 1, 4, dtype=torch.bool)
        torch.testing.assert_close(
            model.forward_blocks(tokens, 1, L, extra, key_mask=full),
            model.forward_blocks(tokens, 1, L, extra))
        # The masked path itself equals the layer on unmasked keys.
        x = torch.cat([tokens, model.prompt[0].expand(3, -1, -1)], dim=1)
        keys = torch.ones(3, x.shape[1], dtype=torch.bool)
        torch.testing.assert_close(
            model.forward_masked_block(0, x, keys),
            model.layers[0](x),
            atol=1e-5,
            rtol=0)
    with pytest.raises(ValueError, match='key_mask must be a bool'):
        model.forward_blocks(tokens, 1, L, extra, key_mask=mask[:, :1])


def test_forward_blocks_validation():
    model = build()
    tokens = model.embed(images())
    with pytest.raises(ValueError, match='start <= end'):
        model.forward_blocks(tokens, 3, 2)
    with pytest.raises(ValueError, match='start <= end'):
        model.forward_blocks(tokens, 0, L + 1)
    with pytest.raises(ValueError, match='extra_prompts must have shape'):
        model.forward_blocks(
            tokens, 0, 2, extra_prompts=torch.zeros(2, 3, 4, C))
    with pytest.raises(ValueError, match='extra_prompts must have shape'):
        model.forward_blocks(
            tokens, 0, 2, extra_prompts=torch.zeros(2, 2, 4, C + 1))
    with pytest.raises(ValueError, match='tokens of shape'):
        model.forward_blocks(tokens[0], 0, 2)


@pytest.mark.parametrize('kwargs, match', [
    (dict(out_type='featmap'), 'out_type'),
    (dict(final_norm=False), 'final_norm'),
    (dict(with_cls_token=False), 'with_cls_token'),
    (dict(out_indices=[1, 3]), 'out_indices'),
    (dict(prompt_length=-1), 'prompt_length'),
    (dict(prompt_init_std=0.), 'prompt_init_std'),
])
def test_invalid_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


def test_prompt_init_std():
    model = build(prompt_length=50, prompt_init_std=0.02)
    model.prompt.data.zero_()
    model.init_weights()
    assert 0.015 < model.prompt.std().item() < 0.025
    assert model.prompt.abs().max().item() <= 2.


def test_load_mmpretrain_classifier_checkpoint(tmp_path):
    vit = VisionTransformer(arch=ARCH, img_size=32, patch_size=8)
    vit.init_weights()
    vit.eval()
    state_dict = {f'backbone.{k}': v for k, v in vit.state_dict().items()}
    state_dict['head.fc.weight'] = torch.zeros(10, C)
    path = tmp_path / 'cls.pth'
    torch.save(dict(state_dict=state_dict, meta=dict(epoch=1)), path)

    model = build(
        prompt_length=0,
        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    x = images()
    with torch.no_grad():
        assert torch.equal(model(x)[0], vit(x)[0])

    # explicit prefix and a 'model' wrapper work too
    torch.save(dict(model=state_dict), path)
    model = build(
        prompt_length=0,
        init_cfg=dict(
            type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    model.init_weights()
    with torch.no_grad():
        assert torch.equal(model(x)[0], vit(x)[0])


def test_pretrained_weights_stay_frozen_and_prompt_loaded(tmp_path):
    source = build(frozen=False)
    source.init_weights()
    path = tmp_path / 'lpt.pth'
    torch.save(
        dict(state_dict={
            f'backbone.{k}': v
            for k, v in source.state_dict().items()
        }), path)
    model = build(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    assert torch.equal(model.prompt, source.prompt)
    assert [n for n, p in model.named_parameters()
            if p.requires_grad] == ['prompt']
    source.eval()
    with torch.no_grad():
        assert torch.equal(model(images())[0], source(images())[0])

    # a backbone-only checkpoint leaves the fresh prompt in place
    vit_path = tmp_path / 'vit.pth'
    save_vit(vit_path)
    model = build(init_cfg=dict(type='Pretrained', checkpoint=str(vit_path)))
    model.init_weights()
    assert model.prompt.abs().sum() > 0
    assert model.prompt.requires_grad

    # a prompt frozen by its owner (LPT phase 2) stays frozen through init
    model = build(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.prompt.requires_grad_(False)
    model.init_weights()
    assert not any(p.requires_grad for p in model.parameters())

    wrong = build(
        prompt_length=P + 1,
        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match='prompt_length=4'):
        wrong.init_weights()


def test_checkpoint_mismatch_names_key(tmp_path):
    path = tmp_path / 'vit.pth'

    save_vit(path, arch=dict(ARCH, feedforward_channels=128))
    model = build(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError) as err:
        model.init_weights()
    assert "'layers.0.ffn.layers.0.0.weight'" in str(err.value)
    assert '(128, 32)' in str(err.value) and '(64, 32)' in str(err.value)
    assert 'wrong arch' in str(err.value)

    save_vit(path, patch_size=4)
    model = build(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(
            ValueError, match='patch_embed.projection.weight'
            '.*patch size'):
        model.init_weights()

    save_vit(path, arch=dict(ARCH, num_layers=2))
    model = build(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match="'layers.2.ln1.weight'.*2 layers"):
        model.init_weights()

    save_vit(path, layer_scale_init_value=0.1)
    model = build(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match="'layers.0.attn.gamma1.weight'"):
        model.init_weights()

    torch.save({'conv1.weight': torch.zeros(8, 3, 3, 3)}, path)
    model = build(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match="'cls_token'.*not a ViT"):
        model.init_weights()


def test_unknown_keys_outside_backbone_are_ignored(tmp_path):
    path = tmp_path / 'vit.pth'
    vit, state_dict = save_vit(path)
    state_dict['head.weight'] = torch.zeros(5, C)
    state_dict['ln2.weight'] = torch.ones(C)
    torch.save(state_dict, path)
    model = build(
        prompt_length=0,
        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    vit.eval()
    with torch.no_grad():
        assert torch.equal(model(images())[0], vit(images())[0])


def test_pos_embed_resized_from_smaller_checkpoint(tmp_path):
    path = tmp_path / 'vit32.pth'
    vit, state_dict = save_vit(path)
    model = build(
        prompt_length=0,
        img_size=48,
        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    assert model.pos_embed.shape == (1, 1 + 6 * 6, C)
    expected = resize_pos_embed(state_dict['pos_embed'], (4, 4), (6, 6),
                                'bicubic', 1)
    assert torch.equal(model.pos_embed.data, expected)
    # the 32-px ViT resizes on the fly for 48-px input: same result
    vit.eval()
    x = images(size=48)
    with torch.no_grad():
        assert torch.allclose(model(x)[0], vit(x)[0], atol=1e-6)

    # a width mismatch of pos_embed is refused
    save_vit(path, arch=dict(ARCH, embed_dims=64, feedforward_channels=64))
    model = build(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match='pos_embed'):
        model.init_weights()


@pytest.mark.parametrize('arch, num_layers, width', [
    ('b', 12, 768),
    ('small', 8, 768),
    ('deit-small', 12, 384),
    ('deit-base', 12, 768),
])
def test_standard_archs_build(arch, num_layers, width):
    with torch.device('meta'):  # shapes only: no 0.3 GB of weights
        model = LPTVisionTransformer(arch=arch, img_size=32, patch_size=16)
    assert model.prompt.shape == (num_layers, 10, width)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == num_layers * 10 * width
    # MMPretrain's default LayerNorm eps, as the IN-21k checkpoint was trained
    assert model.ln1.eps == model.layers[0].ln1.eps == 1e-6
