"""The shipped stand-in: sha256-checked loading by `standin://`."""
import json
import shutil

import pytest
import torch
from mmengine.runner import CheckpointLoader

from lpt_mmpretrain.checkpoints import standin


def test_shipped_standin_loads_and_matches_its_record():
    pth, record = standin.standin_files('digits_vit_tiny')
    with open(record) as f:
        meta = json.load(f)
    assert standin.file_sha256(pth) == meta['sha256']
    assert meta['config'] == 'configs/lpt/digits_pretrain_vit_tiny.py'
    ckpt = CheckpointLoader.load_checkpoint('standin://digits_vit_tiny')
    n = sum(v.numel() for v in ckpt['state_dict'].values())
    assert n == meta['parameters']
    assert 'backbone.pos_embed' in ckpt['state_dict']


def test_phase1_config_builds_on_the_standin():
    """The digits configs load the stand-in from any directory."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    init_default_scope('mmpretrain')
    cfg = Config.fromfile('configs/lpt/phase1_digits.py')
    model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = CheckpointLoader.load_checkpoint('standin://digits_vit_tiny')
    torch.testing.assert_close(model.backbone.pos_embed,
                               ckpt['state_dict']['backbone.pos_embed'])


@pytest.fixture
def copy_dir(tmp_path, monkeypatch):
    for path in standin.standin_files('digits_vit_tiny'):
        shutil.copy(path, tmp_path)
    monkeypatch.setattr(
        standin,
        'standin_files',
        lambda name, directory=str(tmp_path):
        (f'{directory}/{name}.pth', f'{directory}/{name}.json'))
    return tmp_path


def test_a_changed_file_is_refused(copy_dir):
    ckpt = torch.load(copy_dir / 'digits_vit_tiny.pth', weights_only=True)
    ckpt['state_dict']['backbone.pos_embed'] += 1e-3
    torch.save(ckpt, copy_dir / 'digits_vit_tiny.pth')
    with pytest.raises(ValueError, match='sha256.*retrain'):
        standin.load_from_standin('standin://digits_vit_tiny')


def test_a_missing_file_says_how_to_make_it(copy_dir):
    (copy_dir / 'digits_vit_tiny.pth').unlink()
    with pytest.raises(
            FileNotFoundError,
            match='git checkout.*digits_pretrain_vit_tiny.py'):
        standin.load_from_standin('standin://digits_vit_tiny')


def test_export_writes_weights_and_checksum(tmp_path):
    pth, _ = standin.standin_files('digits_vit_tiny')
    record = standin.export_standin(pth, 'again', str(tmp_path))
    assert record['sha256'] == standin.file_sha256(str(tmp_path / 'again.pth'))
    assert json.loads((tmp_path / 'again.json').read_text()) == record
