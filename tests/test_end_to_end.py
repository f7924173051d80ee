"""Our tools/test.py and tools/train.py on the LPT DigitsLT configs.

The runs are the session's (conftest ``digits_runs``: phase 1 then phase 2,
trained by MMPretrain's packaged tools/train.py on the shipped stand-in
ViT); these tests only read them. The tools run in this process
(``conftest.run_tool``): their process boundary is what tests/test_tools.py,
test_distributed.py, test_resume.py and test_preemption.py run.
"""
import pickle
import re
from pathlib import Path

import pytest
import torch

from lpt_mmpretrain.engine import compat

ROOT = Path(__file__).resolve().parents[1]
from conftest import run_tool as tool  # noqa: E402

# this process reads the runs' checkpoints as our tools do
compat.install()

pytestmark = pytest.mark.slow  # the session's training runs

PHASE1 = ROOT / 'configs' / 'lpt' / 'phase1_digits.py'
PHASE2 = ROOT / 'configs' / 'lpt' / 'phase2_digits.py'


def metrics(stdout):
    return {
        k: float(v)
        for k, v in re.findall(r'^(long_tail/\w+): ([\d.]+)$', stdout, re.M)
    }


def _load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.mark.timeout(600)
def test_test_py_prints_the_long_tail_metrics(digits_runs, tmp_path):
    out = tool('test', PHASE1, digits_runs.phase1_full, '--work-dir', tmp_path)
    assert set(metrics(out)) >= {
        'long_tail/top1', 'long_tail/class_mean', 'long_tail/many',
        'long_tail/medium', 'long_tail/few'
    }, out[-2000:]


def test_phase2_refuses_to_start_without_phase1(tmp_path):
    with pytest.raises(ValueError, match='phase1_checkpoint'):
        tool('train', PHASE2, '--work-dir', tmp_path / 'bad', '--cfg-options',
             'model.phase1_checkpoint=None')
    assert not list(tmp_path.glob('bad/*.pth'))


def test_phase2_keeps_the_shared_prompt_of_phase1(digits_runs):
    phase1 = _load(digits_runs.phase1_full)['state_dict']
    phase2 = _load(digits_runs.phase2_full)['state_dict']
    torch.testing.assert_close(
        phase2['backbone.prompt'], phase1['backbone.prompt'], atol=0, rtol=0)


@pytest.mark.timeout(900)
def test_test_py_prompt_only_equals_full(digits_runs, tmp_path):
    """Prompt-only file + pretrained backbone == the full checkpoint."""
    full_file = Path(digits_runs.phase2_full)
    prompt_only = Path(digits_runs.phase2_prompts)
    assert prompt_only.stat().st_size < 0.5 * full_file.stat().st_size
    out = {}
    for kind, checkpoint in (('full', full_file), ('small', prompt_only)):
        out[kind] = metrics(
            tool('test', PHASE2, checkpoint, '--out', tmp_path / f'{kind}.pkl',
                 '--work-dir', tmp_path / kind, '--cfg-options',
                 *digits_runs.phase2_options))
    assert 'long_tail/few' in out['full']
    assert out['small'] == out['full']
    with open(tmp_path / 'full.pkl', 'rb') as f:
        preds_full = pickle.load(f)
    with open(tmp_path / 'small.pkl', 'rb') as f:
        preds_small = pickle.load(f)
    assert len(preds_full) == len(preds_small) == 300
    for a, b in zip(preds_full, preds_small):
        assert torch.equal(a['pred_score'], b['pred_score'])
