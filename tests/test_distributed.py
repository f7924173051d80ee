"""LPT phase 1 and phase 2 on two CPU processes (gloo), against one process.

The runs go through tools/dist_train.sh (torchrun) and tools/train.py on
configs/lpt/phase{1,2}_digits.py, whose pretrained tiny ViT is replaced by a
random one written here. A test-only hook (written to a temporary module and
loaded through ``custom_imports``) dumps the ``(sample_idx, sampling_stream)``
pairs of every training batch each rank receives.

A 2-rank run with ``B`` images per stream per rank and a 1-rank run with
``2 * B`` see the same global sequence (DualClassBalancedSampler), and DDP
averages the two ranks' gradients of equal-sized local means, i.e. the
gradient of the global mean: the checkpoints must agree up to float rounding.
"""
import json
import math
import pickle
import re
import socket
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from lpt_mmpretrain.engine import compat

# this process reads the runs' checkpoints as our tools do
compat.install()

pytestmark = pytest.mark.slow  # subprocess runs

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / 'tools'
PHASE1 = ROOT / 'configs' / 'lpt' / 'phase1_digits.py'
PHASE2 = ROOT / 'configs' / 'lpt' / 'phase2_digits.py'
from conftest import Workspace  # noqa: E402

WORLD = 2
B = 8  # images per stream per rank
EPOCHS = 2
NUM_TRAIN, NUM_TEST = 340, 300  # DigitsLT's train and test splits

# The A-GCL Gaussian cloud and the head's dropout are drawn on each rank from
# its own generator (IterSeedHook seeds from (seed, step, rank)), so a 2-rank
# and a 1-rank run draw different numbers even for the same samples. Without
# them the two runs compute the same global mean loss and must agree.
NO_NOISE = ('model.head.dropout=0', 'model.head.loss.noise_mul=0',
            'model.head.ib_loss.noise_mul=0')
PER_RANK_BATCH = (f'train_dataloader.batch_size={2 * B}',
                  f'train_dataloader.sampler.batch_size={B}')
# one process with the same total batch
TOTAL_BATCH = (f'train_dataloader.batch_size={2 * WORLD * B}',
               f'train_dataloader.sampler.batch_size={WORLD * B}')

HOOK_MODULE = 'lpt_test_seen_samples'
HOOK_SOURCE = '''
import json
import os.path as osp

from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class DumpSeenSamplesHook(Hook):
    """Write the (sample_idx, sampling_stream) pairs of every training batch
    of this rank to ``seen_samples_rank{rank}.json`` in the work dir."""

    def before_train(self, runner):
        self.seen = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.seen.setdefault(str(runner.epoch), []).append(
            [[int(s.sample_idx), int(s.sampling_stream)]
             for s in data_batch['data_samples']])

    def after_train(self, runner):
        path = osp.join(runner.work_dir, f'seen_samples_rank{get_rank()}.json')
        with open(path, 'w') as f:
            json.dump(dict(world_size=get_world_size(), epochs=self.seen), f)
'''


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class DistWorkspace(Workspace):
    """The random backbone and the configs with the sample-dumping hook;
    trains with tools/train.py or tools/dist_train.sh."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, modules={HOOK_MODULE: HOOK_SOURCE})
        seen = [dict(type='DumpSeenSamplesHook')]
        self.phase1 = self.derive(PHASE1, 'phase1_digits_seen', hooks=seen)
        self.phase2 = self.derive(PHASE2, 'phase2_digits_seen', hooks=seen)

    def train(self, config, name, *options, procs=1, epochs=EPOCHS):
        """Train with tools/train.py (procs=1) or tools/dist_train.sh;
        returns (log, work dir)."""
        work_dir = self.root / name
        options = (f'train_cfg.max_epochs={epochs}',
                   'default_hooks.checkpoint.interval=1',
                   'default_hooks.logger.interval=1', *options)
        if procs == 1:
            out = super().train(config, work_dir, options=options).stdout
        else:
            self.env['PORT'] = str(_free_port())
            out = self.run([
                'bash', TOOLS / 'dist_train.sh', config, procs, '--work-dir',
                work_dir, '--no-validate', '--cfg-options',
                f'model.backbone.init_cfg.checkpoint={self.backbone}', *options
            ]).stdout
        return out, work_dir

    def dist_test(self, config, checkpoint, out_file, *options):
        self.env['PORT'] = str(_free_port())
        return self.run([
            'bash', TOOLS / 'dist_test.sh', config, checkpoint, WORLD,
            '--work-dir', self.root / 'test', '--out', out_file,
            '--cfg-options',
            f'model.backbone.init_cfg.checkpoint={self.backbone}', *options
        ]).stdout


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    return DistWorkspace(tmp_path_factory.mktemp('distributed'))


@pytest.fixture(scope='module')
def phase1_dist(ws):
    return ws.train(
        ws.phase1, 'p1_dist', *NO_NOISE, *PER_RANK_BATCH, procs=WORLD)


@pytest.fixture(scope='module')
def phase1_single(ws):
    return ws.train(ws.phase1, 'p1_single', *NO_NOISE, *TOTAL_BATCH)


@pytest.fixture(scope='module')
def phase2_dist(ws, phase1_dist):
    return ws.train(
        ws.phase2,
        'p2_dist',
        *NO_NOISE,
        *PER_RANK_BATCH,
        f'model.phase1_checkpoint={phase1_dist[1]}',
        procs=WORLD)


@pytest.fixture(scope='module')
def phase2_single(ws, phase1_dist):
    # from the same (2-process) phase-1 work dir
    return ws.train(ws.phase2, 'p2_single', *NO_NOISE, *TOTAL_BATCH,
                    f'model.phase1_checkpoint={phase1_dist[1]}')


def _state(work_dir, epoch=EPOCHS):
    ckpt = torch.load(
        work_dir / f'epoch_{epoch}.pth', map_location='cpu', weights_only=True)
    return ckpt['state_dict']


def _losses(log):
    """Every logged training loss (total and per term)."""
    values = re.findall(r'Epoch\(train\).*?\s(loss\w*): (\S+)', log)
    return [float(v) for _, v in values]


def _seen(work_dir, rank):
    with open(work_dir / f'seen_samples_rank{rank}.json') as f:
        return json.load(f)


def _streams(batch):
    """The class-balanced and the instance-balanced indices of a batch."""
    return ([i for i, s in batch if s == 0], [i for i, s in batch if s == 1])


@pytest.mark.timeout(600)
def test_phase1_and_phase2_run_on_two_cpu_processes(phase1_dist, phase2_dist):
    iters = NUM_TRAIN // (WORLD * B)
    for out, work_dir in (phase1_dist, phase2_dist):
        assert "using the 'gloo' backend" in out
        assert 'Distributed training: True' in out
        assert f'Epoch(train) [{EPOCHS}][{iters}/{iters}]' in out
        assert (work_dir / f'epoch_{EPOCHS}.pth').is_file()
        assert (work_dir / f'epoch_{EPOCHS}_prompts.pth').is_file()
        losses = _losses(out)
        assert losses and all(math.isfinite(v) for v in losses)
    # phase 2 started from the 2-process phase-1 work dir
    p1_ckpt = phase1_dist[1] / f'epoch_{EPOCHS}.pth'
    assert f'Loaded the shared prompt and head of phase 1 from {p1_ckpt}' \
        in phase2_dist[0]
    torch.testing.assert_close(
        _state(phase2_dist[1])['backbone.prompt'],
        _state(phase1_dist[1])['backbone.prompt'],
        atol=0,
        rtol=0)


@pytest.mark.timeout(600)
def test_ranks_split_the_global_sequence(phase1_dist, phase1_single,
                                         phase2_dist):
    """Per iteration, rank r gets positions [r * B, (r + 1) * B) of both
    global streams, which the 1-rank run with batch 2 * B sees whole."""
    single = _seen(phase1_single[1], 0)
    assert single['world_size'] == 1
    for work_dir in (phase1_dist[1], phase2_dist[1]):
        ranks = [_seen(work_dir, r) for r in range(WORLD)]
        assert [r['world_size'] for r in ranks] == [WORLD] * WORLD
        assert sorted(ranks[0]['epochs']) == [str(e) for e in range(EPOCHS)]
        for epoch, global_batches in single['epochs'].items():
            per_rank = [r['epochs'][epoch] for r in ranks]
            assert all(len(b) == len(global_batches) for b in per_rank)
            ib_seen = [[] for _ in range(WORLD)]
            for t, global_batch in enumerate(global_batches):
                cb, ib = _streams(global_batch)
                assert len(cb) == len(ib) == WORLD * B
                parts = [_streams(batches[t]) for batches in per_rank]
                assert [i for p in parts for i in p[0]] == cb
                assert [i for p in parts for i in p[1]] == ib
                for r, (_, rank_ib) in enumerate(parts):
                    ib_seen[r] += rank_ib
            # the instance-balanced stream gives no image to both ranks
            assert not set(ib_seen[0]) & set(ib_seen[1])
            assert all(len(s) == len(set(s)) for s in ib_seen)
        # every epoch has its own order
        assert ranks[0]['epochs']['0'] != ranks[0]['epochs']['1']


@pytest.mark.timeout(600)
def test_dist_test_covers_the_whole_test_set(ws, phase1_dist, phase2_dist):
    dump = ws.root / 'preds.pkl'
    out = ws.dist_test(ws.phase2, phase2_dist[1] / f'epoch_{EPOCHS}.pth', dump,
                       f'model.phase1_checkpoint={phase1_dist[1]}')
    with open(dump, 'rb') as f:
        preds = pickle.load(f)
    assert sorted(p['sample_idx'] for p in preds) == list(range(NUM_TEST))
    # the printed metric is computed over the gathered predictions
    correct = sum(int(p['pred_label']) == int(p['gt_label']) for p in preds)
    top1 = re.findall(r'^long_tail/top1: (\S+)$', out, re.M)
    assert len(top1) == 1  # printed by rank 0 only
    assert float(top1[0]) == pytest.approx(100 * correct / NUM_TEST)


@pytest.mark.timeout(600)
def test_two_processes_equal_one_with_the_total_batch(phase1_dist,
                                                      phase1_single,
                                                      phase2_dist,
                                                      phase2_single):
    keys = {
        1: ('backbone.prompt', 'head.fc.weight'),
        2: ('backbone.prompt', 'neck.prompt', 'neck.key', 'head.fc.weight'),
    }
    for phase, dist, single in ((1, phase1_dist, phase1_single),
                                (2, phase2_dist, phase2_single)):
        assert 'Distributed training: False' in single[0]
        d, s = _state(dist[1]), _state(single[1])
        first = _state(single[1], epoch=1)
        for key in keys[phase]:
            if key != 'backbone.prompt' or phase == 1:
                # it trains: not a comparison of two initial states
                assert not torch.equal(s[key], first[key]), key
            torch.testing.assert_close(
                d[key],
                s[key],
                atol=1e-5,
                rtol=1e-5,
                msg=lambda m: f'{key} of phase {phase}: {m}')


@pytest.mark.timeout(600)
def test_with_noise_the_runs_differ_through_the_noise_only(ws, phase1_dist):
    """The default config (A-GCL noise and dropout on), one epoch.

    The 2-rank run draws its noise per rank, so it cannot equal the 1-rank
    run; it differs from it no more than two 1-rank runs that differ only in
    their noise (IterSeedHook's ``seed_offset``) differ from each other.
    """
    dist = ws.train(
        ws.phase1, 'p1_dist_noise', *PER_RANK_BATCH, procs=WORLD, epochs=1)
    single = ws.train(ws.phase1, 'p1_single_noise', *TOTAL_BATCH, epochs=1)
    hooks = Config.fromfile(PHASE1).custom_hooks  # the same order
    reseed = [h['type'] for h in hooks].index('IterSeedHook')
    other_noise = ws.train(
        ws.phase1,
        'p1_single_other_noise',
        *TOTAL_BATCH,
        f'custom_hooks.{reseed}.seed_offset=1',
        epochs=1)
    for out, _ in (dist, single, other_noise):
        losses = _losses(out)
        assert losses and all(math.isfinite(v) for v in losses)
    # the data do not depend on the noise
    for rank in range(WORLD):
        assert _seen(dist[1], rank)['epochs']['0'] == \
            _seen(phase1_dist[1], rank)['epochs']['0']
    d, s, o = (_state(run[1], epoch=1) for run in (dist, single, other_noise))
    for key in ('backbone.prompt', 'head.fc.weight'):
        dist_vs_single = ((d[key] - s[key]).norm() / s[key].norm()).item()
        noise_vs_noise = ((o[key] - s[key]).norm() / s[key].norm()).item()
        assert 1e-3 < dist_vs_single < 1.5 * noise_vs_noise, \
            (key, dist_vs_single, noise_vs_noise)
