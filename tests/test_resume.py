"""Exact resume of LPT phase 2 (configs/lpt/phase2_digits.py) on CPU.

A run of ``EPOCHS`` epochs is compared with the same run killed in the
middle of epoch index ``STOP_EPOCH`` (by a test-only hook that raises, loaded
through ``custom_imports`` from a temporary module) and resumed with a bare
``--resume`` from the work dir, i.e. from ``epoch_{STOP_EPOCH}.pth``. With the
default config (A-GCL noise and dropout on) the two must end with the same
prompts, keys and head: this needs the sampler's position (``set_epoch``),
IterSeedHook (the noise and dropout generators), DualStreamScheduleHook (the
instance-balanced weight of the resumed epoch) and the weights-only loading of
MMEngine's resume checkpoint.

The pretrained tiny ViT and the phase-1 checkpoint are random files written
here: the runs check the machinery, not the accuracy.
"""
import re
from pathlib import Path

import pytest
import torch

from lpt_mmpretrain.engine import compat

# this process reads the runs' checkpoints as our tools do
compat.install()

pytestmark = pytest.mark.slow  # subprocess runs

ROOT = Path(__file__).resolve().parents[1]
PHASE2 = ROOT / 'configs' / 'lpt' / 'phase2_digits.py'
# the tiny ViT and the prompt length of the digits configs
from conftest import DIGITS_VIT as TINY  # noqa: E402
from conftest import Workspace  # noqa: E402

PROMPT_LENGTH = 5
NUM_CLASSES = 10
EPOCHS = 4
STOP_EPOCH = 2  # 0-based: killed during the third epoch ...
STOP_ITER = 7  # ... after its eighth iteration
PROMPT_KEYS = {'backbone.prompt', 'neck.prompt', 'neck.key', 'head.fc.weight'}

HOOK_MODULE = 'lpt_test_interrupt'
HOOK_SOURCE = '''
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class InterruptTrainingHook(Hook):
    """Kill the training after iteration ``iter`` of epoch ``epoch``."""

    priority = 'LOWEST'  # after the other hooks of that iteration

    def __init__(self, epoch, iter):
        self.epoch = epoch
        self.iter = iter

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.epoch == self.epoch and batch_idx == self.iter:
            raise RuntimeError(
                f'Simulated interruption in epoch {runner.epoch}, '
                f'iteration {batch_idx}.')
'''


class ResumeWorkspace(Workspace):
    """The random backbone, a random phase-1 checkpoint and the interrupted
    run's config."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, modules={HOOK_MODULE: HOOK_SOURCE})
        # what phase 2 takes from phase 1: the shared prompt and the head
        dims, layers = TINY['embed_dims'], TINY['num_layers']
        self.phase1 = self.root / 'phase1.pth'
        torch.save(
            dict(
                state_dict={
                    'backbone.prompt':
                    0.02 * torch.randn(layers, PROMPT_LENGTH, dims),
                    'head.fc.weight':
                    0.02 * torch.randn(NUM_CLASSES, dims),
                }), self.phase1)
        # the phase-2 config plus the interrupting hook
        self.interrupted = self.derive(
            PHASE2,
            'phase2_interrupted',
            hooks=[
                dict(
                    type='InterruptTrainingHook',
                    epoch=STOP_EPOCH,
                    iter=STOP_ITER)
            ])

    def train(self, config, work_dir, *args, check=True):
        return super().train(
            config,
            work_dir,
            *args,
            check=check,
            options=[
                f'model.phase1_checkpoint={self.phase1}',
                f'train_cfg.max_epochs={EPOCHS}',
                'default_hooks.checkpoint.interval=1',
                'default_hooks.logger.interval=5'
            ])


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    return ResumeWorkspace(tmp_path_factory.mktemp('resume'))


@pytest.fixture(scope='module')
def uninterrupted(ws):
    work_dir = ws.root / 'uninterrupted'
    return ws.train(PHASE2, work_dir).stdout, work_dir


@pytest.fixture(scope='module')
def resumed(ws):
    work_dir = ws.root / 'resumed'
    killed = ws.train(ws.interrupted, work_dir, check=False)
    assert killed.returncode != 0
    assert (f'Simulated interruption in epoch {STOP_EPOCH}, iteration '
            f'{STOP_ITER}') in killed.stdout
    # it died in the middle of the epoch after epoch_{STOP_EPOCH}.pth
    assert re.search(rf'Epoch\(train\) \[{STOP_EPOCH + 1}\]\[\s*5/',
                     killed.stdout)
    assert not (work_dir / f'epoch_{STOP_EPOCH + 1}.pth').exists()
    last = (work_dir / 'last_checkpoint').read_text().strip()
    assert Path(last) == work_dir / f'epoch_{STOP_EPOCH}.pth'
    # bare --resume: the last checkpoint of the work dir
    return killed.stdout, ws.train(PHASE2, work_dir,
                                   '--resume').stdout, work_dir


def _state(work_dir, name=f'epoch_{EPOCHS}.pth'):
    # weights_only=True, as MMEngine's resume loads through our allow-list
    ckpt = torch.load(work_dir / name, map_location='cpu', weights_only=True)
    return ckpt['state_dict']


def _schedule_lines(log):
    return re.findall(
        r'DualStreamScheduleHook: epoch (\d+)/(\d+), `head` '
        r'instance-balanced loss weight = (\S+)', log)


def _train_losses(log, first_epoch):
    """``(epoch, iter) -> logged loss terms`` of the epochs from
    ``first_epoch`` (1-based, as logged) on."""
    losses = {}
    for epoch, it, rest in re.findall(
            r'Epoch\(train\) \[(\d+)\]\[\s*(\d+)/\d+\](.*)', log):
        if int(epoch) >= first_epoch:
            losses[int(epoch), int(it)] = re.findall(r'(loss\w*): (\S+)', rest)
    return losses


@pytest.mark.timeout(600)
def test_resume_mid_epoch_is_exact(uninterrupted, resumed):
    full_log, full_dir = uninterrupted
    _, resumed_log, resumed_dir = resumed
    assert f'resumed epoch: {STOP_EPOCH}' in resumed_log
    expected, resumed_state = _state(full_dir), _state(resumed_dir)
    for key in ('neck.prompt', 'neck.key', 'head.fc.weight',
                'backbone.prompt'):
        # they trained (the frozen shared prompt aside)
        if key != 'backbone.prompt':
            assert not torch.equal(expected[key],
                                   _state(full_dir, 'epoch_3.pth')[key])
        torch.testing.assert_close(
            resumed_state[key], expected[key], atol=1e-6, rtol=1e-6)
    # the resumed epochs logged the same losses as the uninterrupted run
    resumed_losses = _train_losses(resumed_log, STOP_EPOCH + 1)
    assert sorted({e
                   for e, _ in resumed_losses
                   }) == list(range(STOP_EPOCH + 1, EPOCHS + 1))
    assert resumed_losses == _train_losses(full_log, STOP_EPOCH + 1)


@pytest.mark.timeout(600)
def test_resume_sets_the_instance_balanced_weight_of_the_resumed_epoch(
        uninterrupted, resumed):
    full_log, _ = uninterrupted
    killed_log, resumed_log, _ = resumed

    def weight(epoch):
        return max(0., 0.5 * (EPOCHS - epoch) / EPOCHS)

    def schedule(first):
        return [(str(e), str(EPOCHS), str(weight(e)))
                for e in range(first, EPOCHS)]

    assert _schedule_lines(full_log) == schedule(0)
    assert _schedule_lines(killed_log) == schedule(0)[:STOP_EPOCH + 1]
    # the resumed run starts at the epoch it was killed in, weight 0.25
    assert _schedule_lines(resumed_log) == schedule(STOP_EPOCH)
    assert _schedule_lines(resumed_log)[0][2] == '0.25'


@pytest.mark.timeout(600)
def test_prompt_only_checkpoint_is_small_and_holds_the_prompts(uninterrupted):
    _, work_dir = uninterrupted
    full = work_dir / f'epoch_{EPOCHS}.pth'
    small = work_dir / f'epoch_{EPOCHS}_prompts.pth'
    assert small.stat().st_size < 0.1 * full.stat().st_size
    prompts = torch.load(small, map_location='cpu', weights_only=True)
    assert set(prompts['state_dict']) == PROMPT_KEYS | {
        'backbone.frozen_fingerprint', 'backbone.frozen_source'
    }
    assert prompts['meta']['lpt_prompt_only'] is True
    assert prompts['meta']['full_checkpoint'] == full.name
    full_meta = torch.load(full, mmap=True, weights_only=True)['meta']
    assert (prompts['meta']['epoch'],
            prompts['meta']['iter']) == (full_meta['epoch'], full_meta['iter'])
    # prompt-only files rotate with the full ones (max_keep_ckpts)
    fulls = {
        p.name
        for p in work_dir.glob('epoch_*.pth')
        if not p.name.endswith('_prompts.pth')
    }
    smalls = {
        p.name.replace('_prompts', '')
        for p in work_dir.glob('epoch_*_prompts.pth')
    }
    assert smalls == fulls
    state = _state(work_dir)
    for key in PROMPT_KEYS:
        assert torch.equal(prompts['state_dict'][key], state[key]), key
