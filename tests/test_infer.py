"""tools/infer.py and lpt_mmpretrain.apis.LPTClassifierInferencer: one
image, a folder or a list; full or prompt-only checkpoints; top-k by name;
JSON."""
import json
import os
import subprocess
import sys
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch

from lpt_mmpretrain.apis import (LPTClassifierInferencer, collect_images,
                                 load_class_names)

ROOT = Path(__file__).resolve().parents[1]
PHASE2 = str(ROOT / 'configs' / 'lpt' / 'phase2_digits.py')
NUM_IMAGES = 12


def _write(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    mmcv.imwrite(img, str(path))
    return str(path)


def test_collect_images(tmp_path):
    img = np.zeros((4, 4, 3), np.uint8)
    a = _write(tmp_path / 'dir' / 'b.png', img)
    b = _write(tmp_path / 'dir' / 'sub' / 'a.jpg', img)
    (tmp_path / 'dir' / 'notes.md').write_text('not an image')
    listed = tmp_path / 'list.txt'
    listed.write_text(f'# a comment\ndir/b.png\n\n{b}\n')
    assert collect_images(str(tmp_path / 'dir')) == [a, b]
    assert collect_images([str(listed), a]) == [a, b, a]
    with pytest.raises(FileNotFoundError, match='neither an image'):
        collect_images(str(tmp_path / 'missing.png'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='folder without images'):
        collect_images(str(tmp_path / 'empty'))
    listed.write_text('dir/nope.png\n')
    with pytest.raises(FileNotFoundError, match='1 image'):
        collect_images(str(listed))


def test_load_class_names(tmp_path):
    names = tmp_path / 'names.txt'
    names.write_text('zero\none\n\n')
    assert load_class_names(str(names)) == ['zero', 'one']
    assert load_class_names(('a', 'b')) == ['a', 'b']
    with pytest.raises(FileNotFoundError, match='one name per line'):
        load_class_names(str(tmp_path / 'missing.txt'))


@pytest.fixture(scope='module')
def digit_images(tmp_path_factory):
    """The first test images of DigitsLT as PNG files (32 px, as the data
    set holds them), a list file naming them, and their arrays."""
    from lpt_mmpretrain.datasets import DigitsLT
    root = tmp_path_factory.mktemp('digit_images')
    data = DigitsLT(split='test').load_data_list()[:NUM_IMAGES]
    paths = [
        _write(root / 'folder' / f'{i:02d}.png', d['img'])
        for i, d in enumerate(data)
    ]
    listed = root / 'list.txt'
    listed.write_text('\n'.join(os.path.relpath(p, root) for p in paths))
    return dict(
        root=root,
        paths=paths,
        folder=str(root / 'folder'),
        list=str(listed),
        arrays=[d['img'] for d in data])


def _expected_scores(checkpoint, arrays):
    """Scores of the model on the data set's own arrays."""
    from mmpretrain import get_model
    model = get_model(PHASE2, pretrained=checkpoint)
    inputs = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=inputs.float()))
        samples = model.predict(data['inputs'])
    return np.stack([s.pred_score.numpy() for s in samples])


def _run_infer(*args):
    proc = subprocess.run(
        [sys.executable,
         str(ROOT / 'tools' / 'infer.py'), *map(str, args)],
        cwd=str(ROOT),
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:] + proc.stdout[-2000:]
    return proc


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize('kind', ['full', 'prompts'])
def test_infer_tool_folder_list_and_image(kind, digits_runs, digit_images,
                                          tmp_path):
    """The folder, the list and the single image give the model's scores on
    the data set's own arrays, by class name, best first. `prompts` needs
    prompt-only files to load their backbone (issue 11, item 1)."""
    checkpoint = getattr(digits_runs, f'phase2_{kind}')
    options = ['--topk', '3']
    out = tmp_path / 'folder.json'
    table = _run_infer(PHASE2, checkpoint, digit_images['folder'], *options,
                       '--out', out).stdout
    from_folder = json.loads(out.read_text())
    from_list = json.loads(
        _run_infer(PHASE2, checkpoint, digit_images['list'], *options, '--out',
                   '-').stdout)
    single = json.loads(
        _run_infer(PHASE2, checkpoint, digit_images['paths'][0], *options,
                   '--out', '-').stdout)

    assert [r['image'] for r in from_folder] == digit_images['paths']
    assert [Path(r['image']).resolve() for r in from_list] == \
        [Path(p).resolve() for p in digit_images['paths']]
    expected = _expected_scores(digits_runs.phase2_full,
                                digit_images['arrays'])
    for results in (from_folder, from_list):
        assert len(results) == NUM_IMAGES
        for result, scores in zip(results, expected):
            labels = [r['label'] for r in result['topk']]
            assert labels == list(np.argsort(-scores, kind='stable')[:3])
            assert [r['class'] for r in result['topk']] == \
                [str(i) for i in labels]
            np.testing.assert_allclose([r['score'] for r in result['topk']],
                                       np.sort(scores)[::-1][:3],
                                       rtol=1e-4,
                                       atol=1e-6)
            assert result['pred_class'] == result['topk'][0]['class']
    assert single == from_folder[:1]
    first = from_folder[0]
    assert f"{first['image']}: {first['pred_class']} (" in table


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_inferencer_class_names(digits_runs, digit_images, tmp_path):
    names = tmp_path / 'names.txt'
    names.write_text('\n'.join(f'digit {i}' for i in range(10)))
    inferencer = LPTClassifierInferencer(
        PHASE2, digits_runs.phase2_full, classes=str(names))
    result = inferencer(digit_images['paths'][:2], topk=10)
    assert len(result) == 2 and len(result[0]['topk']) == 10
    assert result[0]['pred_class'] == f"digit {result[0]['pred_label']}"
    with pytest.raises(
            ValueError,
            match='3 class names are given for a '
            'head with 10 classes'):
        LPTClassifierInferencer(
            PHASE2, digits_runs.phase2_full, classes=['a', 'b', 'c'])
    with pytest.raises(FileNotFoundError, match='does not exist'):
        LPTClassifierInferencer(PHASE2, str(tmp_path / 'nope.pth'))
    with pytest.raises(ValueError, match='topk must be >= 1'):
        inferencer(digit_images['paths'][:1], topk=0)
