"""tools/dataset_converters/resize_images.py: short side shrunk, aspect
kept, small images untouched, split files and JSON valid, resumable, bad
images copied and reported."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from fixtures.bad_images import BAD, make_inat_root
from mmengine.registry import init_default_scope
from PIL import Image

import lpt_mmpretrain  # noqa: F401
from lpt_mmpretrain.datasets import INat2018
from lpt_tools.data.resize import resize_dataset

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / 'tools' / 'dataset_converters' / 'resize_images.py'


def _big(root: Path):
    rng = np.random.default_rng(0)
    img = (rng.random((60, 80, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(root / 'train_val2018' / 'c0' / 'big.jpg'), img)
    cv2.imwrite(str(root / 'train_val2018' / 'c1' / 'big.png'), img)


def test_cli_resizes_and_keeps_annotations_valid(tmp_path):
    src = make_inat_root(tmp_path / 'src')
    _big(src)
    dst = tmp_path / 'dst'
    proc = subprocess.run([
        sys.executable,
        str(TOOL),
        str(src),
        str(dst), '--short-side', '20', '--workers', '2'
    ],
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stdout  # the bad images are reported
    for name in BAD:
        assert f'BAD {src / "train_val2018" / "c2" / name}' in proc.stdout
    # 40x30 -> 27x20, 80x60 -> 27x20 (jpg and png), aspect kept
    assert Image.open(dst / 'train_val2018/c0/0.jpg').size == (27, 20)
    assert Image.open(dst / 'train_val2018/c0/big.jpg').size == (27, 20)
    assert Image.open(dst / 'train_val2018/c1/big.png').format == 'PNG'
    # bad files are copied unchanged, so paths stay valid
    assert (dst / 'train_val2018/c2/empty.jpg').read_bytes() == b''
    ann = json.loads((dst / 'train2018.json').read_text())
    sizes = {i['file_name']: (i['width'], i['height']) for i in ann['images']}
    assert sizes['train_val2018/c0/0.jpg'] == (27, 20)
    assert sizes['train_val2018/c2/empty.jpg'] == (40, 30)  # untouched
    init_default_scope('mmpretrain')
    dataset = INat2018(ann_file='train2018.json', data_root=str(dst))
    assert len(dataset) == 15


def test_small_images_copied_and_resume(tmp_path):
    src = make_inat_root(tmp_path / 'src')
    dst = tmp_path / 'dst'
    first = resize_dataset(str(src), str(dst), short_side=100)
    original = (src / 'train_val2018/c0/0.jpg').read_bytes()
    assert (dst / 'train_val2018/c0/0.jpg').read_bytes() == original
    assert first['resized'] == 12 and first['kept'] == 0
    assert first['copied'] == 2 and len(first['bad']) == 3
    # a stopped run: some outputs missing, a leftover temporary file
    (dst / 'train_val2018/c1/2.jpg').unlink()
    (dst / 'train_val2018/c1/3.jpg.tmp123').write_bytes(b'partial')
    again = resize_dataset(str(src), str(dst), short_side=100)
    assert again['resized'] == 1 and again['kept'] == 14
    assert (dst / 'train_val2018/c1/2.jpg').exists()
