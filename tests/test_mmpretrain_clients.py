"""MMPretrain's own clients on this project's files, unchanged: the tools
packaged in mmpretrain/.mim/tools (what `mim train/test` runs) as
subprocesses on tiny DigitsLT runs, and the Python APIs (get_model, the
Inferencer). Both kinds of checkpoint: full and prompt-only.

MMPretrain's demo/image_demo.py is not packaged (mmpretrain/.mim holds no
demo/); it is a thin CLI over ImageClassificationInferencer, which is tested
here directly.
"""
import glob
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

import lpt_mmpretrain  # noqa: F401

# Every test here runs packaged tools or uses the trained runs.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / 'configs' / 'lpt'
PHASES = ('phase1', 'phase2')
KINDS = ('full', 'prompts')


def _metrics(stdout):
    # the last value of each metric printed
    metrics = dict(re.findall(r'(long_tail/[a-z0-9_]+): ([\d.]+)', stdout))
    assert 'long_tail/top1' in metrics, stdout[-3000:]
    return {k: float(v) for k, v in metrics.items()}


def _config(phase):
    return CONFIGS / f'{phase}_digits.py'


def _checkpoint(runs, phase, kind):
    return getattr(runs, f'{phase}_{kind}')


def _options(runs, phase):
    return getattr(runs, f'{phase}_options')


@pytest.fixture(scope='module')
def full_metrics(digits_runs, packaged_tool, tmp_path_factory):
    """Packaged tools/test.py on the full checkpoints of both phases."""
    out = {}
    for phase in PHASES:
        args = [_config(phase), _checkpoint(digits_runs, phase, 'full')]
        options = _options(digits_runs, phase)
        if options:
            args += ['--cfg-options', *options]
        work_dir = tmp_path_factory.mktemp(f'test_{phase}_full')
        out[phase] = _metrics(
            packaged_tool('test.py', *args, '--work-dir', work_dir).stdout)
    return out


def test_packaged_train_wrote_both_kinds_of_file(digits_runs):
    """The session fixture trained phase 1 then phase 2 with the packaged
    tools/train.py, unchanged (no --no-persistent-workers)."""
    for phase in PHASES:
        for kind in KINDS:
            path = Path(_checkpoint(digits_runs, phase, kind))
            assert path.is_file(), path
    assert Path(digits_runs.phase2_prompts).stat().st_size < \
        Path(digits_runs.phase2_full).stat().st_size / 5


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    'config',
    ['digits_pretrain_vit_tiny.py', 'baseline_digits_linear_probe.py'])
def test_packaged_train_other_digits_configs(config, packaged_tool, tmp_path):
    packaged_tool(
        'train.py',
        CONFIGS / config,
        '--work-dir',
        tmp_path,
        '--cfg-options',
        'train_cfg.max_epochs=1',
        cwd=tmp_path)
    assert glob.glob(str(tmp_path / 'epoch_1.pth'))


@pytest.mark.timeout(900)
@pytest.mark.parametrize('phase', PHASES)
def test_packaged_test_prompt_only_equals_full(phase, digits_runs,
                                               packaged_tool, full_metrics,
                                               tmp_path):
    """tools/test.py on the prompt-only file gives the full file's metrics
    (needs issue 11 item 1: prompt-only files load their backbone)."""
    args = [_config(phase), _checkpoint(digits_runs, phase, 'prompts')]
    options = _options(digits_runs, phase)
    if options:
        args += ['--cfg-options', *options]
    metrics = _metrics(
        packaged_tool('test.py', *args, '--work-dir', tmp_path).stdout)
    assert metrics == full_metrics[phase]
    # a trained model, not chance (10 classes)
    assert metrics['long_tail/top1'] > 20


@pytest.mark.timeout(900)
def test_packaged_test_show_dir(digits_runs, packaged_tool, tmp_path):
    # MMPretrain's VisualizationHook writes to --show-dir as given (relative
    # to the working directory, not to the work dir)
    args = [
        _config('phase2'), digits_runs.phase2_full, '--work-dir', tmp_path,
        '--show-dir', tmp_path / 'vis', '--interval', '1', '--cfg-options',
        *digits_runs.phase2_options, 'test_dataloader.dataset.indices=4'
    ]
    packaged_tool('test.py', *args, cwd=tmp_path)
    images = sorted(p.name for p in (tmp_path / 'vis').glob('*.png'))
    assert images == [f'{i}_0.png' for i in range(4)]


@pytest.mark.timeout(900)
@pytest.mark.parametrize('kind', KINDS)
def test_packaged_confusion_matrix(kind, digits_runs, packaged_tool,
                                   full_metrics, tmp_path):
    import mmengine
    args = [
        _config('phase2'),
        _checkpoint(digits_runs, 'phase2',
                    kind), '--out', tmp_path / 'cm.pkl', '--show-path',
        tmp_path / 'cm.png', '--cfg-options', *digits_runs.phase2_options
    ]
    packaged_tool('analysis_tools/confusion_matrix.py', *args)
    cm = mmengine.load(str(tmp_path / 'cm.pkl'))
    cm = torch.as_tensor(cm)
    assert cm.shape == (10, 10) and int(cm.sum()) == 300
    # the diagonal is the top-1 accuracy that tools/test.py printed
    top1 = 100 * cm.diag().sum().item() / 300
    assert top1 == pytest.approx(
        full_metrics['phase2']['long_tail/top1'], abs=0.01)
    assert (tmp_path / 'cm.png').stat().st_size > 0


@pytest.mark.timeout(300)
def test_packaged_analyze_logs(digits_runs, packaged_tool, tmp_path):
    logs = glob.glob(
        str(digits_runs.phase1_dir / '*' / 'vis_data' / '2*.json'))
    assert logs, 'the phase-1 run wrote no json log'
    out = tmp_path / 'loss.png'
    packaged_tool('analysis_tools/analyze_logs.py', 'plot_curve', logs[0],
                  '--keys', 'loss', 'loss_cb', '--out', out)
    assert out.stat().st_size > 0
    timing = packaged_tool('analysis_tools/analyze_logs.py', 'cal_train_time',
                           logs[0]).stdout
    assert 'average iter time' in timing


@pytest.mark.timeout(600)
@pytest.mark.parametrize('config,shape', [
    ('phase1_digits.py', '32'),
    ('phase2_digits.py', '32'),
    ('phase2_places.py', '224'),
])
def test_packaged_get_flops(config, shape, packaged_tool):
    """get_flops builds the model with get_model(config) and counts
    extract_feat (phase 2: the LPT forward pass, both sweeps). Every other
    config's model is built by tests/test_configs.py and, through the
    packaged test.py's --tta setup, by tests/test_tta.py."""
    out = packaged_tool('analysis_tools/get_flops.py', CONFIGS / config,
                        '--shape', shape).stdout
    flops = re.search(r'Flops: ([\d.]+)([KMGT]?)', out)
    assert flops and float(flops.group(1)) > 0, out[-2000:]


def _digits(n=8):
    from lpt_mmpretrain.datasets import DigitsLT
    data = DigitsLT(split='test').load_data_list()[::300 // n][:n]
    return [d['img'] for d in data]


def _logits_of(model, arrays):
    inputs = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=inputs))
        return model(data['inputs'], mode='tensor')


def _scores_of(model, arrays):
    inputs = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=inputs))
        return torch.stack(
            [s.pred_score for s in model.predict(data['inputs'])])


def _cfg(runs, phase):
    cfg = Config.fromfile(str(_config(phase)))
    options = dict(o.split('=', 1) for o in _options(runs, phase))
    cfg.merge_from_dict(options)
    return cfg


@pytest.mark.timeout(600)
@pytest.mark.parametrize('phase', PHASES)
def test_get_model_prompt_only_logits_equal_full(phase, digits_runs):
    """get_model(CONFIG, pretrained=...) gives the same logits from both
    files (needs issue 11 item 1 for the prompt-only one)."""
    from mmpretrain import get_model
    arrays = _digits()
    full = get_model(
        _cfg(digits_runs, phase),
        pretrained=_checkpoint(digits_runs, phase, 'full'))
    prompts = get_model(
        _cfg(digits_runs, phase),
        pretrained=_checkpoint(digits_runs, phase, 'prompts'))
    expected = _logits_of(full, arrays)
    torch.testing.assert_close(_logits_of(prompts, arrays), expected)
    assert full._dataset_meta['classes'] == tuple(map(str, range(10)))


@pytest.mark.timeout(600)
@pytest.mark.parametrize('kind', KINDS)
def test_inferencer_on_image_files(kind, digits_runs, tmp_path):
    """ImageClassificationInferencer (what demo/image_demo.py runs) on image
    files, incl. one 4x larger than the model's input (the test pipeline
    resizes), predicts what the model predicts on the data set's arrays."""
    import mmcv
    from mmpretrain import ImageClassificationInferencer, get_model
    arrays = _digits()
    paths = []
    for i, img in enumerate(arrays):
        if i == 0:
            img = mmcv.imresize(img, (128, 128), interpolation='nearest')
        paths.append(str(tmp_path / f'{i}.png'))
        mmcv.imwrite(img, paths[-1])
    cfg = _cfg(digits_runs, 'phase2')
    inferencer = ImageClassificationInferencer(
        model=cfg, pretrained=_checkpoint(digits_runs, 'phase2', kind))
    results = inferencer(paths)
    full = get_model(cfg, pretrained=digits_runs.phase2_full)
    expected = _scores_of(full, arrays)
    for i, (result, scores) in enumerate(zip(results, expected)):
        assert result['pred_class'] == str(int(scores.argmax()))
        if i:  # same pixels as the arrays
            np.testing.assert_allclose(
                result['pred_scores'], scores.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.timeout(600)
def test_mim_test(digits_runs, tmp_path):
    """`mim test mmpretrain` runs the same packaged tools/test.py."""
    import shutil
    import subprocess
    mim = shutil.which(
        'mim', path=str(Path(__import__('sys').executable).parent))
    if mim is None:
        pytest.skip('openmim is not installed (pip install openmim)')
    import os
    proc = subprocess.run([
        mim, 'test', 'mmpretrain',
        str(_config('phase2')), '--checkpoint', digits_runs.phase2_full,
        '--work-dir',
        str(tmp_path), '--cfg-options', *digits_runs.phase2_options
    ],
                          cwd=str(ROOT),
                          env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert _metrics(proc.stdout)['long_tail/top1'] > 20
