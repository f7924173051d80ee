"""Tests of tools/train.py, tools/test.py, tools/dist_*.sh and
engine/compat/dist.py.

The tools run on a tiny ViT config (tests/fixtures) over a few PNG images
written to a temporary folder: the single-process ones in this process
(``conftest.run_tool``), the distributed ones as two CPU processes with the
gloo backend (tools/dist_*.sh, torchrun).
"""
import os
import os.path as osp
import pickle
import shutil
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config

from lpt_mmpretrain.engine.compat import dist as lpt_dist
from lpt_mmpretrain.engine.compat.checkpoint import load_from_safe_local

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO, 'tools')
CONFIG = osp.join(REPO, 'tests', 'fixtures', 'tiny_vit_cls.py')
# The 2-process runs test the CPU (gloo) path, also on a machine with a GPU.
CPU_ONLY = dict(CUDA_VISIBLE_DEVICES='')
# images per class folder; 5 test images do not split evenly over 2 ranks
TRAIN_COUNTS = (4, 4)
TEST_COUNTS = (3, 2)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


from conftest import load_tool as _load_tool  # noqa: E402
from conftest import run_tool  # noqa: E402


def _run(cmd, cwd, env=None):
    """Run a tool, fail with its output if it fails, return the output."""
    full_env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable)
    full_env.update(env or {})
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True)
    assert proc.returncode == 0, f'{cmd} failed:\n{proc.stdout[-6000:]}'
    return proc.stdout


def _load_preds(path):
    with open(path, 'rb') as f:
        return pickle.load(f)


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """A working directory holding ``data/{train,test}/class_{i}/*.png``."""
    root = tmp_path_factory.mktemp('tools')
    rng = np.random.default_rng(0)
    for split, counts in (('train', TRAIN_COUNTS), ('test', TEST_COUNTS)):
        for label, count in enumerate(counts):
            folder = root / 'data' / split / f'class_{label}'
            folder.mkdir(parents=True)
            for i in range(count):
                # class 1 is brighter, so that the classes can be learnt
                img = rng.integers(0, 100, (32, 32, 3)) + 150 * label
                cv2.imwrite(str(folder / f'{i}.png'), img.astype(np.uint8))
    return root


@pytest.fixture(scope='module')
def trained(workspace):
    """One epoch of single-process training (in this process); returns
    (output, work dir)."""
    work_dir = workspace / 'work_dirs' / 'single'
    out = run_tool('train', CONFIG, '--work-dir', work_dir, cwd=workspace)
    return out, work_dir


@pytest.fixture(scope='module')
def single_preds(trained, workspace):
    """Single-process test of the epoch-1 checkpoint (in this process):
    (output, dump)."""
    _, work_dir = trained
    dump = workspace / 'preds_single.pkl'
    out = run_tool(
        'test',
        CONFIG,
        work_dir / 'epoch_1.pth',
        '--work-dir',
        workspace / 'work_dirs' / 'test_single',
        '--out',
        dump,
        cwd=workspace)
    return out, _load_preds(dump)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_train_writes_checkpoint(trained):
    out, work_dir = trained
    assert (work_dir / 'epoch_1.pth').is_file()
    assert 'Epoch(val) [1]' in out and 'accuracy/top1' in out


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_train_resume_continues(trained, workspace):
    _, work_dir = trained
    # bare --resume: the last checkpoint of the work dir
    resume_dir = workspace / 'work_dirs' / 'resume'
    shutil.copytree(work_dir, resume_dir)
    out = run_tool(
        'train',
        CONFIG,
        '--work-dir',
        resume_dir,
        '--resume',
        '--cfg-options',
        'train_cfg.max_epochs=2',
        cwd=workspace)
    assert 'resumed epoch: 1' in out
    assert 'Epoch(train) [1]' not in out and 'Epoch(train) [2]' in out
    ckpt = load_from_safe_local(str(resume_dir / 'epoch_2.pth'), 'cpu')
    assert ckpt['meta']['epoch'] == 2


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_test_prints_metrics_and_dumps_predictions(single_preds):
    out, preds = single_preds
    lines = out.splitlines()
    summary = [line for line in lines if line.startswith('accuracy/top1: ')]
    assert len(summary) == 1
    assert 0. <= float(summary[0].split(': ')[1]) <= 100.
    assert len(preds) == sum(TEST_COUNTS)
    for pred in preds:
        assert {'pred_score', 'pred_label', 'gt_label'} <= set(pred)
        assert pred['pred_score'].shape == (len(TEST_COUNTS), )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_dist_train_on_cpu(workspace):
    work_dir = workspace / 'work_dirs' / 'dist'
    cmd = [
        'bash',
        osp.join(TOOLS, 'dist_train.sh'), CONFIG, '2', '--work-dir',
        str(work_dir)
    ]
    out = _run(cmd, workspace, env=dict(CPU_ONLY, PORT=str(_free_port())))
    assert "using the 'gloo' backend" in out
    assert 'Distributed training: True' in out
    # 8 training images, 2 ranks, batch size 2: 2 iterations per epoch
    assert 'Epoch(train) [1][2/2]' in out
    assert (work_dir / 'epoch_1.pth').is_file()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_dist_test_on_cpu_covers_whole_test_set(trained, single_preds,
                                                workspace):
    _, work_dir = trained
    single_out, single = single_preds
    dump = workspace / 'preds_dist.pkl'
    cmd = [
        'bash',
        osp.join(TOOLS, 'dist_test.sh'), CONFIG,
        str(work_dir / 'epoch_1.pth'), '2', '--work-dir',
        str(workspace / 'work_dirs' / 'test_dist'), '--out',
        str(dump)
    ]
    out = _run(cmd, workspace, env=dict(CPU_ONLY, PORT=str(_free_port())))
    preds = _load_preds(dump)
    # every test image once, none twice (the sampler pads 5 to 6)
    assert len(preds) == sum(TEST_COUNTS)
    paths = sorted(p['img_path'] for p in preds)
    assert paths == sorted(p['img_path'] for p in single)
    by_path = {p['img_path']: p for p in single}
    for pred in preds:
        torch.testing.assert_close(pred['pred_score'],
                                   by_path[pred['img_path']]['pred_score'])
    # the summary line is printed by rank 0 only, with the same value
    summary = [line for line in out.splitlines() if line.startswith('acc')]
    assert summary == [
        line for line in single_out.splitlines() if line.startswith('acc')
    ]


# ---------------------------------------------------------------------------
# Argument merging (no run)


def _train_args(*argv):
    train = _load_tool('train')
    old = sys.argv
    sys.argv = ['train.py', CONFIG, *argv]
    try:
        return train, train.parse_args()
    finally:
        sys.argv = old


def test_train_merge_args_defaults_and_persistent_workers():
    train, args = _train_args('--cfg-options', 'val_dataloader.num_workers=2')
    cfg = train.merge_args(Config.fromfile(CONFIG), args)
    assert cfg.work_dir == osp.join('./work_dirs', 'tiny_vit_cls')
    assert cfg.launcher == 'none'
    # persistent workers only where there are workers
    assert cfg.train_dataloader.persistent_workers is False
    assert cfg.val_dataloader.persistent_workers is True
    assert cfg.train_dataloader.pin_memory is True
    assert cfg.get('resume', False) is False


def test_train_merge_args_resume_and_flags():
    train, args = _train_args('--resume', 'some/ckpt.pth', '--no-validate',
                              '--no-pin-memory', '--work-dir', 'wd')
    cfg = train.merge_args(Config.fromfile(CONFIG), args)
    assert cfg.resume is True and cfg.load_from == 'some/ckpt.pth'
    assert cfg.val_dataloader is None and cfg.val_cfg is None
    assert cfg.train_dataloader.pin_memory is False
    assert cfg.work_dir == 'wd'

    train, args = _train_args('--resume')
    cfg = train.merge_args(Config.fromfile(CONFIG), args)
    assert cfg.resume is True and cfg.load_from is None

    train, args = _train_args('--auto-scale-lr')
    with pytest.raises(ValueError, match='base_batch_size'):
        train.merge_args(Config.fromfile(CONFIG), args)


# ---------------------------------------------------------------------------
# engine/compat/dist.py in this process (world size 1)


@pytest.fixture
def cpu_only(monkeypatch):
    monkeypatch.setattr(lpt_dist, 'has_accelerator', lambda: False)
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                 'MASTER_PORT', 'SLURM_PROCID', 'SLURM_NTASKS',
                 'SLURM_NODELIST', 'SLURM_LOCALID'):
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def _single_rank_env(monkeypatch):
    """The variables torchrun sets for a one-process run."""
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(_free_port()))


def test_setup_cpu_distributed_pytorch(cpu_only):
    _single_rank_env(cpu_only)
    cfg = Config(
        dict(
            env_cfg=dict(dist_cfg=dict(backend='nccl', timeout=60)),
            model_wrapper_cfg=dict(find_unused_parameters=True)))
    lpt_dist.setup_cpu_distributed(cfg, 'pytorch')
    assert torch_dist.is_initialized()
    assert torch_dist.get_backend() == 'gloo'
    assert torch_dist.get_world_size() == 1
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel',
        find_unused_parameters=True,
        device_ids=None)


def test_teardown_distributed(cpu_only):
    # nothing to tear down: a no-op, not an error
    lpt_dist.teardown_distributed()
    assert not torch_dist.is_initialized()

    _single_rank_env(cpu_only)
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='gloo'))))
    lpt_dist.setup_cpu_distributed(cfg, 'pytorch')
    assert torch_dist.is_initialized()
    lpt_dist.teardown_distributed()
    assert not torch_dist.is_initialized()


def test_setup_cpu_distributed_default_wrapper_and_slurm(cpu_only):
    cpu_only.setenv('SLURM_PROCID', '0')
    cpu_only.setenv('SLURM_NTASKS', '1')
    cpu_only.setenv('SLURM_NODELIST', 'node-1')
    cpu_only.setenv('MASTER_ADDR', '127.0.0.1')
    port = _free_port()
    # `port` in dist_cfg, as for MMEngine's slurm launcher
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='gloo', port=port))))
    lpt_dist.setup_cpu_distributed(cfg, 'slurm')
    assert torch_dist.is_initialized()
    assert os.environ['RANK'] == '0' and os.environ['WORLD_SIZE'] == '1'
    assert os.environ['MASTER_PORT'] == str(port)
    # the same keyword arguments as Runner.wrap_model without a config
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=False,
        device_ids=None)


def test_setup_cpu_distributed_errors_and_no_ops(cpu_only):
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='gloo'))))
    with pytest.raises(RuntimeError, match='RANK'):
        lpt_dist.setup_cpu_distributed(cfg, 'pytorch')
    with pytest.raises(ValueError, match='launcher'):
        lpt_dist.setup_cpu_distributed(cfg, 'torchrun')

    lpt_dist.setup_cpu_distributed(cfg, 'none')
    assert not torch_dist.is_initialized() and 'model_wrapper_cfg' not in cfg

    # with an accelerator MMEngine's own path is kept untouched
    cpu_only.setattr(lpt_dist, 'has_accelerator', lambda: True)
    lpt_dist.setup_cpu_distributed(cfg, 'pytorch')
    assert not torch_dist.is_initialized() and 'model_wrapper_cfg' not in cfg


def test_setup_cpu_distributed_refuses_gpu_device_ids(cpu_only):
    _single_rank_env(cpu_only)
    cfg = Config(
        dict(
            env_cfg=dict(dist_cfg=dict(backend='gloo')),
            model_wrapper_cfg=dict(device_ids=[0])))
    with pytest.raises(ValueError, match='device_ids'):
        lpt_dist.setup_cpu_distributed(cfg, 'pytorch')
    assert not torch_dist.is_initialized()


@pytest.mark.skipif(lpt_dist.has_accelerator(), reason='probes a CPU host')
def test_host_probes_on_cpu():
    """Without an accelerator, MMEngine's AmpOptimWrapper cannot be built
    (MMEngine 0.10.7 and OneDL's 0.10.12 alike), and torch refuses
    persistent_workers without workers."""
    from lpt_mmpretrain.engine.compat import mmpretrain_tools as tools_mod
    assert tools_mod.amp_optim_wrapper_builds() is False
    assert tools_mod.persistent_workers_need_workers() is True


@pytest.mark.parametrize('needed', [True, False])
def test_host_fixes_follow_their_probes(needed, monkeypatch):
    """adapt_cfg_to_host changes a config only where a probe finds the fix
    needed."""
    from lpt_mmpretrain.engine.compat import mmpretrain_tools as tools_mod
    monkeypatch.setattr(tools_mod, 'amp_optim_wrapper_builds',
                        lambda: not needed)
    monkeypatch.setattr(tools_mod, 'persistent_workers_need_workers',
                        lambda: needed)
    cfg = tools_mod.adapt_cfg_to_host(
        Config(
            dict(
                optim_wrapper=dict(type='AmpOptimWrapper'),
                train_dataloader=dict(num_workers=0,
                                      persistent_workers=True))))
    assert cfg.optim_wrapper.type == ('CPUAmpOptimWrapper'
                                      if needed else 'AmpOptimWrapper')
    assert cfg.train_dataloader.persistent_workers is not needed
