"""Preemption: SIGTERM mid-epoch, ``--resume``, same result as no signal.

LPT phase 1 on DigitsLT (configs/lpt/phase1_digits.py, the shipped tiny
stand-in ViT) trains ``EPOCHS`` epochs with one dataloader worker. In the
interrupted run a test-only hook sends SIGTERM to the whole process group
(as Slurm does: the worker gets it too) after iteration ``SIGNAL_ITER`` of
epoch index 1; PreemptionCheckpointHook must save ``iter_N.pth`` at that
iteration boundary and exit with status 75, and a bare ``--resume`` must
continue the epoch at the next batch and end with the uninterrupted run's
prompt and head, having logged the same losses.
"""
import os
import re
import signal
from pathlib import Path

import pytest
import torch
from conftest import Workspace

from lpt_mmpretrain.engine import compat
from lpt_mmpretrain.engine.hooks.preemption_checkpoint_hook import (
    EXIT_PREEMPTED, PreemptionCheckpointHook)

# this process reads the runs' checkpoints as our tools do
compat.install()

pytestmark = pytest.mark.slow  # subprocess runs

ROOT = Path(__file__).resolve().parents[1]
PHASE1 = ROOT / 'configs' / 'lpt' / 'phase1_digits.py'
EPOCHS = 2
SIGNAL_EPOCH = 1  # 0-based
SIGNAL_ITER = 4  # batch_idx: signal after the fifth iteration of the epoch
INTERVAL = 7  # iteration checkpoints in the interrupted run

HOOK_MODULE = 'lpt_test_sigterm'
HOOK_SOURCE = '''
import os
import signal

from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class SigtermProcessGroupHook(Hook):
    """Send SIGTERM to the process group after iteration ``iter`` of
    ``epoch``, as Slurm signals every process of a task."""

    priority = 'NORMAL'  # before PreemptionCheckpointHook (VERY_LOW)

    def __init__(self, epoch, iter):
        self.epoch = epoch
        self.iter = iter

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.epoch == self.epoch and batch_idx == self.iter:
            os.killpg(os.getpgid(0), signal.SIGTERM)
'''


class PreemptionWorkspace(Workspace):
    """The shipped stand-in backbone and the signalled run's config."""

    def __init__(self, root: Path) -> None:
        super().__init__(
            root, modules={HOOK_MODULE: HOOK_SOURCE}, backbone=False)
        self.signalled = self.derive(
            PHASE1,
            'phase1_signalled',
            hooks=[
                dict(
                    type='SigtermProcessGroupHook',
                    epoch=SIGNAL_EPOCH,
                    iter=SIGNAL_ITER)
            ],
            extra='default_hooks = dict(preemption=dict('
            f'interval={INTERVAL}))\n')

    def train(self, config, work_dir, *args):
        # its own process group: the SIGTERM to the group spares pytest
        return super().train(
            config,
            work_dir,
            *args,
            check=False,
            options=[
                f'train_cfg.max_epochs={EPOCHS}',
                'train_dataloader.num_workers=1',
                'default_hooks.checkpoint.interval=1',
                'default_hooks.logger.interval=1'
            ],
            start_new_session=True,
            timeout=600)


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    return PreemptionWorkspace(tmp_path_factory.mktemp('preemption'))


@pytest.fixture(scope='module')
def runs(ws):
    full_dir, cut_dir = ws.root / 'uninterrupted', ws.root / 'signalled'
    full = ws.train(PHASE1, full_dir)
    assert full.returncode == 0, full.stdout[-6000:]
    cut = ws.train(ws.signalled, cut_dir)
    cut_files = sorted(p.name for p in cut_dir.glob('*.pth'))
    last = (cut_dir / 'last_checkpoint').read_text().strip()
    resumed = ws.train(PHASE1, cut_dir, '--resume')
    assert resumed.returncode == 0, resumed.stdout[-6000:]
    return full.stdout, full_dir, cut, cut_files, last, resumed.stdout


def _iters_per_epoch(log):
    return int(re.search(r'Epoch\(train\) \[1\]\[\s*\d+/(\d+)\]', log)[1])


def _train_losses(log, first_epoch):
    losses = {}
    for epoch, it, rest in re.findall(
            r'Epoch\(train\) \[(\d+)\]\[\s*(\d+)/\d+\](.*)', log):
        if int(epoch) >= first_epoch:
            losses[int(epoch), int(it)] = re.findall(r'(loss\w*): (\S+)', rest)
    return losses


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.mark.timeout(900)
def test_sigterm_saves_at_the_iteration_boundary_and_exits(runs):
    full_log, _, cut, cut_files, last, _ = runs
    per_epoch = _iters_per_epoch(full_log)
    done = SIGNAL_EPOCH * per_epoch + SIGNAL_ITER + 1
    assert cut.returncode == EXIT_PREEMPTED, cut.stdout[-6000:]
    assert 'got SIGTERM' in cut.stdout
    # it stopped right after the signalled iteration, worker alive till then
    assert re.search(
        rf'Epoch\(train\) \[{SIGNAL_EPOCH + 1}\]\[\s*{SIGNAL_ITER + 1}/',
        cut.stdout)
    assert not re.search(
        rf'Epoch\(train\) \[{SIGNAL_EPOCH + 1}\]\[\s*{SIGNAL_ITER + 2}/',
        cut.stdout)
    assert 'DataLoader worker' not in cut.stdout
    assert Path(last).name == f'iter_{done}.pth'
    meta = _state(last)['meta']
    assert (meta['epoch'], meta['iter']) == (SIGNAL_EPOCH, done)
    # max_keep_ckpts=1: the interval checkpoints before it are gone; the
    # epoch checkpoints of CheckpointHook are untouched
    assert done > INTERVAL
    assert [n for n in cut_files if n.startswith('iter_')] == \
        [f'iter_{done}.pth', f'iter_{done}_prompts.pth']
    assert 'epoch_1.pth' in cut_files


@pytest.mark.timeout(900)
def test_resume_after_sigterm_is_exact(runs, ws):
    full_log, full_dir, _, _, _, resumed_log = runs
    per_epoch = _iters_per_epoch(full_log)
    assert (f'resuming epoch {SIGNAL_EPOCH + 1} at iteration '
            f'{SIGNAL_ITER + 2}/{per_epoch}') in resumed_log
    resumed_losses = _train_losses(resumed_log, 1)
    # it trained the rest of the epoch only, numbered as in a whole epoch
    assert min(resumed_losses) == (SIGNAL_EPOCH + 1, SIGNAL_ITER + 2)
    full_losses = _train_losses(full_log, 1)
    assert resumed_losses == {
        k: v
        for k, v in full_losses.items() if k >= min(resumed_losses)
    }
    expected = _state(full_dir / f'epoch_{EPOCHS}.pth')['state_dict']
    got = _state(ws.root / 'signalled' / f'epoch_{EPOCHS}.pth')['state_dict']
    for key in ('backbone.prompt', 'head.fc.weight'):
        torch.testing.assert_close(got[key], expected[key], atol=0, rtol=0)


def test_unknown_signal_name_is_refused():
    with pytest.raises(ValueError, match='unknown signal names'):
        PreemptionCheckpointHook(signals=('SIGNOPE', ))


def test_handler_only_sets_a_flag():
    hook = PreemptionCheckpointHook()
    hook._install_handlers()
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert hook._received == signal.SIGUSR1
        assert hook._signalled_on_any_rank()
    finally:
        hook._restore_handlers()
    assert signal.getsignal(signal.SIGUSR1) is not hook._handle


def test_skip_first_keeps_the_length():
    from lpt_mmpretrain.engine.runner.resumable_train_loop import _SkipFirst
    skip = _SkipFirst(list(range(10)), 4)
    assert list(skip) == [4, 5, 6, 7, 8, 9]
    assert len(skip) == 10


def test_resume_with_another_epoch_length_is_refused():
    from lpt_mmpretrain.engine.runner.resumable_train_loop import \
        ResumableEpochBasedTrainLoop
    loop = ResumableEpochBasedTrainLoop.__new__(ResumableEpochBasedTrainLoop)
    loop.dataloader, loop._iter, loop._epoch = [None] * 10, 25, 1
    with pytest.raises(RuntimeError, match='an epoch now has 10'):
        loop.resume_position()
