"""Phase 1 then phase 2 on DigitsLT through tools/train.py and tools/test.py.

The configs' backbone checkpoint (the demo's pretrained tiny ViT) is replaced
by a random tiny ViT written here: these runs check the machinery, not the
accuracy (the demo does that).
"""
import pickle
import re
from pathlib import Path

import pytest
import torch

from lpt_mmpretrain.engine import compat

ROOT = Path(__file__).resolve().parents[1]
from conftest import run_python as run  # noqa: E402
from conftest import save_random_vit  # noqa: E402

# this process reads the runs' checkpoints as our tools do
compat.install()

pytestmark = pytest.mark.slow  # subprocess runs


def metrics(stdout):
    return {
        k: float(v)
        for k, v in re.findall(r'^(long_tail/\w+): ([\d.]+)$', stdout, re.M)
    }


@pytest.fixture(scope='module')
def backbone_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp('pretrained') / 'vit_tiny.pth'
    save_random_vit(path)
    return path


@pytest.mark.timeout(900)
def test_phase1_then_phase2(tmp_path, backbone_ckpt):
    common = [
        f'model.backbone.init_cfg.checkpoint={backbone_ckpt}',
        'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=1'
    ]
    p1, p2 = tmp_path / 'phase1', tmp_path / 'phase2'

    run('tools/train.py', 'configs/lpt/phase1_digits.py', '--work-dir', p1,
        '--cfg-options', *common)
    assert (p1 / 'epoch_2.pth').is_file()
    assert (p1 / 'epoch_2_prompts.pth').is_file()

    out = run('tools/test.py', 'configs/lpt/phase1_digits.py',
              p1 / 'epoch_2.pth', '--work-dir', tmp_path / 'test1').stdout
    m1 = metrics(out)
    assert set(m1) >= {
        'long_tail/top1', 'long_tail/class_mean', 'long_tail/many',
        'long_tail/medium', 'long_tail/few'
    }, out[-2000:]

    # phase 2 refuses to start without a phase-1 checkpoint
    proc = run('tools/train.py',
               'configs/lpt/phase2_digits.py',
               '--work-dir',
               tmp_path / 'bad',
               '--cfg-options',
               *common,
               'model.phase1_checkpoint=None',
               check=False)
    assert proc.returncode != 0
    assert 'phase1_checkpoint' in proc.stdout  # stdout and stderr merged

    run('tools/train.py', 'configs/lpt/phase2_digits.py', '--work-dir', p2,
        '--cfg-options', *common, f'model.phase1_checkpoint={p1}')
    ckpt = torch.load(p2 / 'epoch_2.pth', map_location='cpu')
    phase1 = torch.load(p1 / 'epoch_2.pth', map_location='cpu')
    # the shared prompt came from phase 1 and stayed frozen
    torch.testing.assert_close(ckpt['state_dict']['backbone.prompt'],
                               phase1['state_dict']['backbone.prompt'],
                               atol=0,
                               rtol=0)

    full = run('tools/test.py', 'configs/lpt/phase2_digits.py',
               p2 / 'epoch_2.pth', '--out', tmp_path / 'full.pkl',
               '--work-dir', tmp_path / 'test2', '--cfg-options',
               f'model.backbone.init_cfg.checkpoint={backbone_ckpt}',
               f'model.phase1_checkpoint={p1}').stdout
    m2 = metrics(full)
    assert 'long_tail/few' in m2

    # prompt-only file + pretrained backbone == the full checkpoint
    prompt_only = p2 / 'epoch_2_prompts.pth'
    assert prompt_only.stat().st_size < 0.5 * (p2 /
                                               'epoch_2.pth').stat().st_size
    small = run('tools/test.py', 'configs/lpt/phase2_digits.py', prompt_only,
                '--out', tmp_path / 'small.pkl', '--work-dir',
                tmp_path / 'test3', '--cfg-options',
                f'model.backbone.init_cfg.checkpoint={backbone_ckpt}',
                f'model.phase1_checkpoint={p1}').stdout
    assert metrics(small) == m2
    with open(tmp_path / 'full.pkl', 'rb') as f:
        preds_full = pickle.load(f)
    with open(tmp_path / 'small.pkl', 'rb') as f:
        preds_small = pickle.load(f)
    assert len(preds_full) == len(preds_small) == 300
    for a, b in zip(preds_full, preds_small):
        assert torch.equal(a['pred_score'], b['pred_score'])
