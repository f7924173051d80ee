"""The data-loading benchmark: its images, the config's pipeline, a rate."""
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import lpt_mmpretrain  # noqa: F401
from lpt_tools.data.loader_benchmark import (available_backends,
                                             benchmark_pipeline,
                                             training_pipeline, write_jpegs)

ROOT = Path(__file__).resolve().parents[1]
INAT = ROOT / 'configs' / 'lpt' / 'phase1_inat.py'


def test_jpegs_and_pipeline(tmp_path):
    paths = write_jpegs(str(tmp_path), (80, 60), num=3)
    assert [Image.open(p).size for p in paths] == [(80, 60)] * 3
    assert available_backends(paths[0])['cv2'] == ''
    pipeline = training_pipeline(str(INAT))
    assert [t['type'] for t in pipeline] == [
        'CheckedLoadImageFromFile', 'RandomResizedCrop', 'RandomFlip',
        'PackInputs'
    ]
    rate, n = benchmark_pipeline(pipeline, paths, 'cv2', seconds=0.1)
    assert n >= 3 and rate > 0


def test_in_memory_config_refused():
    with pytest.raises(ValueError, match='does not start by loading'):
        training_pipeline(str(ROOT / 'configs/lpt/phase1_digits.py'))


def test_cli_prints_a_table():
    proc = subprocess.run([
        sys.executable, 'tools/analysis_tools/benchmark_dataloader.py',
        '--seconds', '0.05', '--repeats', '1', '--num-images', '2'
    ],
                          cwd=ROOT,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout
    assert 'inat (800x600)' in proc.stdout
    assert 'inat->short 320 (427x320)' in proc.stdout
