"""Text-initialised cosine head: tools/misc/clip_text_embeddings.py on a tiny
open_clip model, and a CLIP config whose head starts from its output."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmpretrain.registry import MODELS

import lpt_mmpretrain  # noqa: F401
from lpt_mmpretrain.checkpoints import convert_clip_checkpoint

open_clip = pytest.importorskip('open_clip')

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(REPO, 'tools', 'misc', 'clip_text_embeddings.py')
CONFIG = osp.join(REPO, 'configs', 'lpt', 'phase1_places_clip_b16.py')
WIDTH, EMBED, TEXT_WIDTH = 32, 16, 32
MODEL_CFG = dict(
    embed_dim=EMBED,
    vision_cfg=dict(
        image_size=32, layers=2, width=WIDTH, head_width=16, patch_size=8),
    text_cfg=dict(
        context_length=77,
        vocab_size=49408,
        width=TEXT_WIDTH,
        heads=2,
        layers=1))
NAMES = ['cat', 'sea_lion', 'dog']


def load_tool():
    spec = importlib.util.spec_from_file_location('clip_text_emb', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_clip(tmp_path):
    """A random tiny CLIP model (QuickGELU), its config .json and files."""
    cfg_file = str(tmp_path / 'tiny-clip-lpt-test.json')
    with open(cfg_file, 'w') as f:
        json.dump(MODEL_CFG, f)
    open_clip.add_model_config(cfg_file)
    torch.manual_seed(0)
    model = open_clip.create_model(
        'tiny-clip-lpt-test', pretrained=None, force_quick_gelu=True).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # text projection and LNs start as constants
        for name, param in model.named_parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=gen))
    ckpt = str(tmp_path / 'open_clip_pytorch_model.bin')
    torch.save(model.state_dict(), ckpt)
    names = str(tmp_path / 'classnames.txt')
    with open(names, 'w') as f:
        f.write('\n'.join(NAMES[:2]) + '\n\n' + NAMES[2] + '\n')
    return model, cfg_file, ckpt, names


def expected(model, image_space=True):
    prompts = [
        'a photo of a cat.', 'a photo of a sea lion.', 'a photo of a '
        'dog.'
    ]
    with torch.no_grad():
        emb = F.normalize(
            model.encode_text(open_clip.tokenize(prompts)), dim=-1)
        if image_space:
            emb = F.normalize(emb @ model.visual.proj.t(), dim=-1)
    return emb


@pytest.mark.parametrize('joint_space', [False, True])
def test_tool_writes_lift_text_embeddings(tmp_path, tiny_clip, joint_space):
    model, cfg_file, ckpt, names = tiny_clip
    dst = str(tmp_path / 'text.pth')
    argv = [ckpt, names, dst, '--model', cfg_file, '--quick-gelu']
    out = load_tool().main(argv + (['--joint-space'] if joint_space else []))
    weight = out['state_dict']['head.fc.weight']
    assert weight.shape == (3, EMBED if joint_space else WIDTH)
    torch.testing.assert_close(weight, expected(model, not joint_space))
    assert out['meta']['class_names'] == NAMES

    saved = torch.load(dst, weights_only=True)
    torch.testing.assert_close(saved['state_dict']['head.fc.weight'], weight)


def test_activation_matters(tmp_path, tiny_clip):
    model, cfg_file, ckpt, names = tiny_clip
    out = load_tool().main(
        [ckpt, names,
         str(tmp_path / 't.pth'), '--model', cfg_file])
    diff = out['state_dict']['head.fc.weight'] - expected(model)
    assert diff.abs().max() > 1e-4


def test_missing_text_tower_and_wrong_model(tmp_path, tiny_clip):
    model, cfg_file, ckpt, names = tiny_clip
    visual_only = str(tmp_path / 'visual.bin')
    torch.save(
        {
            k: v
            for k, v in model.state_dict().items() if k.startswith('visual.')
        }, visual_only)
    with pytest.raises(ValueError, match="Key 'positional_embedding'"):
        load_tool().main(
            [visual_only, names,
             str(tmp_path / 't.pth'), '--model', cfg_file])
    with pytest.raises(ValueError, match='does not match the checkpoint'):
        load_tool().main(
            [ckpt, names,
             str(tmp_path / 't.pth'), '--model', 'ViT-B-16'])
    with pytest.raises(ValueError, match='Unknown open_clip model'):
        load_tool().main(
            [ckpt, names,
             str(tmp_path / 't.pth'), '--model', 'no-such'])
    empty = str(tmp_path / 'empty.txt')
    open(empty, 'w').close()
    with pytest.raises(ValueError, match='no class names'):
        load_tool().main([ckpt, empty, str(tmp_path / 't.pth')])


def test_clip_config_starts_from_text_embeddings(tmp_path, tiny_clip):
    """phase1_places_clip_b16.py, shrunk and without prompts: the backbone
    gives CLIP's feature and the head starts from the tool's file through
    its init_cfg, with no text tower in the model."""
    model, cfg_file, ckpt, names = tiny_clip
    text = str(tmp_path / 'text.pth')
    load_tool().main([ckpt, names, text, '--model', cfg_file, '--quick-gelu'])
    backbone_ckpt = str(tmp_path / 'clip_lpt.pth')
    torch.save(convert_clip_checkpoint(model.state_dict()), backbone_ckpt)

    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.update(
        arch=dict(
            embed_dims=WIDTH,
            num_layers=2,
            num_heads=2,
            feedforward_channels=4 * WIDTH),
        img_size=32,
        patch_size=8,
        prompt_length=0,
        init_cfg=dict(checkpoint=backbone_ckpt))
    cfg.model.head.update(
        num_classes=3,
        in_channels=WIDTH,
        init_cfg=dict(type='Pretrained', checkpoint=text, prefix='head.'))
    classifier = MODELS.build(cfg.model)
    classifier.init_weights()
    classifier.eval()
    torch.testing.assert_close(classifier.head.fc.weight, expected(model))

    # Without prompts the feature is CLIP's ln_post on the CLS token.
    x = torch.randn(2, 3, 32, 32)
    seen = {}
    hook = model.visual.ln_post.register_forward_hook(
        lambda m, i, o: seen.setdefault('out', o))
    with torch.no_grad():
        model.visual(x)
        feat = classifier.extract_feat(x)[0]
    hook.remove()
    torch.testing.assert_close(feat, seen['out'][:, 0], rtol=0, atol=1e-5)
