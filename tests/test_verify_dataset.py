"""tools/misc/verify_dataset.py names every bad image, writes the list and
exits non-zero; clean data exits 0."""
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.bad_images import (BAD, inat_config, make_inat_root,
                                 make_split_file_root, split_file_config)
from mmengine.config import Config

import lpt_mmpretrain  # noqa: F401
from lpt_tools.data.verify import verify_config

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / 'tools' / 'misc' / 'verify_dataset.py'
PIPELINE = [dict(type='CheckedLoadImageFromFile'), dict(type='PackInputs')]


@pytest.mark.parametrize('kind', ['split_file', 'inat'])
def test_cli_lists_the_bad_images(tmp_path, kind):
    if kind == 'split_file':
        root = make_split_file_root(tmp_path / 'data')
        cfg = split_file_config(root, PIPELINE)
        ann = 'train.txt'
    else:
        root = make_inat_root(tmp_path / 'data')
        cfg = inat_config(root, PIPELINE)
        ann = 'train2018.json'
    # a listed image that does not exist is bad too (not raised at build)
    (next((root).rglob('c1/3.jpg'))).unlink()
    config = tmp_path / 'cfg.py'
    Config(cfg).dump(str(config))
    out = tmp_path / 'bad.txt'
    proc = subprocess.run([
        sys.executable,
        str(TOOL),
        str(config), '--workers', '2', '--out',
        str(out)
    ],
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 1, proc.stdout
    listed = dict(line.split('\t') for line in out.read_text().splitlines())
    names = sorted(Path(p).name for p in listed)
    assert names == sorted([*BAD, '3.jpg'])
    for path, reason in listed.items():
        name = Path(path).name
        expected = BAD.get(name, 'does not exist')
        assert expected in reason
        assert f'BAD {path}: ' in proc.stdout
    assert f'listed in {root / ann}' in proc.stdout
    assert 'Fix: copy the listed files again' in proc.stdout
    assert 'Decoded 15 images with 2 worker(s): 4 bad.' in proc.stdout


def test_clean_data_passes(tmp_path):
    root = make_split_file_root(tmp_path / 'data')
    lines = [
        line for line in (root / 'train.txt').read_text().splitlines()
        if not any(b in line for b in BAD)
    ]
    (root / 'train.txt').write_text('\n'.join(lines) + '\n')
    num_bad, report = verify_config(
        Config(split_file_config(root, PIPELINE)),
        workers=1,
        out=str(tmp_path / 'bad.txt'))
    assert num_bad == 0, report
    assert 'Decoded 12 images' in report
    assert not (tmp_path / 'bad.txt').exists()


def test_in_memory_data_set_is_reported(tmp_path):
    cfg = Config.fromfile(str(ROOT / 'configs' / 'lpt' / 'phase1_digits.py'))
    num_bad, report = verify_config(cfg)
    assert num_bad == 0
    assert 'train: the data set keeps its images in memory' in report
