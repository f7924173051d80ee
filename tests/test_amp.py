"""Mixed precision: A-GCL in reduced precision, CPUAmpOptimWrapper, --amp.

On GPUs ``tools/train.py --amp`` uses MMEngine's ``AmpOptimWrapper`` (fp16
by default, ``optim_wrapper.dtype=bfloat16`` for bf16); the GPU cases below
run only where CUDA is available. MMEngine's wrapper refuses CPUs, so CPU
runs use ``CPUAmpOptimWrapper`` (bf16 or fp16 autocast on the CPU).
"""
import copy
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.optim import AmpOptimWrapper, build_optim_wrapper
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from mmpretrain.utils import register_all_modules

from lpt_mmpretrain.engine import compat
from lpt_mmpretrain.engine.compat.optimizers import CPUAmpOptimWrapper
from lpt_mmpretrain.engine.compat.optimizers import \
    cpu_amp_optimizer_wrapper as wrapper_module
from lpt_mmpretrain.structures import STREAM_KEY

# this process reads tools/train.py's checkpoints as our tools do
compat.install()

ROOT = Path(__file__).resolve().parents[1]
from conftest import TINY_VIT as TINY  # noqa: E402

COUNTS = [40, 20, 10, 5, 2]
HAS_CUDA = torch.cuda.is_available()


@pytest.fixture(autouse=True, scope='module')
def _scope_and_threads():
    register_all_modules(init_default_scope=True)
    # Tiny models: one thread is as fast, and much faster on shared cores.
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


# --------------------------------------------------------------------- #
# A-GCL in reduced precision
# --------------------------------------------------------------------- #
def agcl(**kwargs):
    return MODELS.build(
        dict(type='AsymmetricGCLLoss', cls_num_list=COUNTS, **kwargs))


def agcl_reference(z, y, s, gamma_pos, gamma_neg, m=0.1, ls=0.1):
    """The spec's A-GCL without noise, in float64 and without clamps."""
    z = z.double() - m * F.one_hot(y, z.size(1))
    log_p = F.log_softmax(s * z, dim=1)
    p = log_p.exp()
    onehot = F.one_hot(y, z.size(1)).bool()
    t = (1 - ls) * onehot + ls / z.size(1)
    w = torch.where(onehot, (1 - p)**gamma_pos, p**gamma_neg)
    return -(t * w * log_p).sum(1).mean()


def extreme_logits(dtype):
    """Cosine logits at the edges: p_y -> 1, p_y -> 0, and ties."""
    z = torch.tensor([
        [1., -1., -1., -1., -1.],  # sure and right: p_y -> 1, p_j -> 0
        [-1., 1., 1., 1., 1.],  # sure and wrong: p_y -> 0
        [0., 0., 0., 0., 0.],  # uniform
        [1., 1., -1., -1., -1.],  # a tie with the target
    ])
    y = torch.tensor([0, 0, 3, 1])
    return z.to(dtype).requires_grad_(), y


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('gamma_pos,gamma_neg', [(0., 0.), (0., 4.),
                                                 (0.5, 8.)])
@pytest.mark.parametrize('s', [20., 1000.])
def test_agcl_reduced_precision_extremes(dtype, gamma_pos, gamma_neg, s):
    # s = 1000 drives p_j to exactly 0 and p_y to exactly 1 in float32: the
    # log of 0 and pow(0, gamma) with gamma 0 and 0.5 are all reached.
    loss_fn = agcl(s=s, gamma_pos=gamma_pos, gamma_neg=gamma_neg).eval()
    z, y = extreme_logits(dtype)
    loss = loss_fn(z, y)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert z.grad.dtype == dtype
    assert torch.isfinite(z.grad.float()).all()
    # a confidently wrong sample gets a gradient, a right one (almost) none
    assert z.grad[1].abs().sum() > 0
    torch.testing.assert_close(
        loss.double(),
        agcl_reference(z.detach(), y, s, gamma_pos, gamma_neg),
        rtol=1e-4,
        atol=1e-4)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_agcl_reduced_precision_training_noise(dtype):
    torch.manual_seed(0)
    loss_fn = agcl(gamma_pos=0.5, gamma_neg=8.).train()
    z = (torch.rand(64, 5) * 2 - 1).to(dtype).requires_grad_()
    y = torch.randint(0, 5, (64, ))
    loss = loss_fn(z, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad.float()).all()


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_agcl_under_cpu_autocast_matches_float32(dtype):
    """Autocast does not lower the precision of the loss's own math."""
    torch.manual_seed(0)
    loss_fn = agcl(gamma_pos=0.5, gamma_neg=8.).eval()
    z = torch.rand(16, 5) * 2 - 1
    y = torch.randint(0, 5, (16, ))
    expected = loss_fn(z, y)
    with torch.autocast('cpu', dtype=dtype):
        got = loss_fn(z, y)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------- #
# CPUAmpOptimWrapper
# --------------------------------------------------------------------- #
def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


@pytest.fixture
def cpu_device(monkeypatch):
    """MMEngine's device is the CPU, also on a machine with a GPU."""
    monkeypatch.setattr(wrapper_module, 'get_device', lambda: 'cpu')


def test_cpu_wrapper_autocasts(cpu_device):
    model = nn.Linear(4, 4)
    for dtype, expected in ((None, torch.bfloat16), ('bfloat16',
                                                     torch.bfloat16),
                            ('float16', torch.float16), (torch.float16,
                                                         torch.float16)):
        wrapper = CPUAmpOptimWrapper(optimizer=sgd(model), dtype=dtype)
        assert wrapper.cast_dtype == expected
        with wrapper.optim_context(model):
            assert model(torch.randn(2, 4)).dtype == expected
        assert model(torch.randn(2, 4)).dtype == torch.float32


def test_cpu_wrapper_errors(cpu_device, monkeypatch):
    model = nn.Linear(4, 4)
    with pytest.raises(ValueError, match='bfloat16'):
        CPUAmpOptimWrapper(optimizer=sgd(model), dtype='float32')
    with pytest.raises(ValueError, match='bfloat16'):
        CPUAmpOptimWrapper(optimizer=sgd(model), dtype=torch.float64)
    with pytest.raises(TypeError, match='loss_scale'):
        CPUAmpOptimWrapper(optimizer=sgd(model), loss_scale='static')
    monkeypatch.setattr(wrapper_module, 'get_device', lambda: 'cuda')
    with pytest.raises(RuntimeError, match="type='AmpOptimWrapper'"):
        CPUAmpOptimWrapper(optimizer=sgd(model))


def test_cpu_wrapper_config_and_state_dict(cpu_device):
    model = nn.Linear(4, 4)
    wrapper = build_optim_wrapper(
        model,
        dict(
            type='CPUAmpOptimWrapper',
            loss_scale=512.,
            dtype='float16',
            optimizer=dict(type='SGD', lr=0.1)))
    assert isinstance(wrapper, CPUAmpOptimWrapper)
    assert isinstance(wrapper, AmpOptimWrapper)
    assert wrapper.loss_scaler.get_scale() == 512.
    state = wrapper.state_dict()
    assert state['loss_scaler']['scale'] == 512.
    other = CPUAmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    other.load_state_dict(copy.deepcopy(state))
    assert other.loss_scaler.get_scale() == 512.


# --------------------------------------------------------------------- #
# LPT phase 1 and phase 2 under AMP
# --------------------------------------------------------------------- #
def head_cfg():
    return dict(
        type='CosineClsHead',
        num_classes=5,
        in_channels=32,
        loss=dict(type='AsymmetricGCLLoss', cls_num_list=COUNTS),
        ib_loss=dict(
            type='AsymmetricGCLLoss',
            cls_num_list=COUNTS,
            gamma_pos=0.5,
            gamma_neg=8.))


def phase1_model():
    return MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(
                type='LPTVisionTransformer',
                arch=TINY,
                img_size=32,
                patch_size=8,
                prompt_length=3),
            head=head_cfg(),
            data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3)))


def phase2_model():
    return MODELS.build(
        dict(
            type='LPTClassifier',
            backbone=dict(
                type='LPTVisionTransformer',
                arch=TINY,
                img_size=32,
                patch_size=8,
                prompt_length=3),
            neck=dict(
                type='PromptPoolNeck', pool_size=4, prompt_length=2, top_k=2),
            head=head_cfg(),
            share_blocks=2,
            allow_no_phase1=True,
            data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3)))


def dual_batch(num=16):
    samples = []
    for i in range(num):
        sample = DataSample().set_gt_label(torch.tensor(i % 5))
        sample.set_metainfo({STREAM_KEY: i % 2})
        samples.append(sample)
    inputs = torch.randint(0, 256, (num, 3, 32, 32), dtype=torch.uint8)
    return dict(inputs=inputs, data_samples=samples)


def wrappers():
    cases = [
        pytest.param('cpu', CPUAmpOptimWrapper, 'bfloat16', id='cpu-bf16'),
        pytest.param('cpu', CPUAmpOptimWrapper, 'float16', id='cpu-fp16'),
    ]
    for dtype in ('float16', 'bfloat16'):
        cases.append(
            pytest.param(
                'cuda',
                AmpOptimWrapper,
                dtype,
                id=f'cuda-{dtype}',
                marks=pytest.mark.skipif(
                    not HAS_CUDA, reason='needs a CUDA GPU')))
    return cases


def train_until_updated(model, wrapper, trained, max_steps=12):
    """Train steps until every trained parameter moved.

    With fp16, the dynamic loss scale starts at 2 ** 16 and the first steps
    overflow (and are skipped) until the scale has come down.
    """
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    batch = dual_batch()
    for _ in range(max_steps):
        log = model.train_step(copy.deepcopy(batch), wrapper)
        assert all(torch.isfinite(v) for v in log.values()), log
        after = dict(model.named_parameters())
        if all(not torch.equal(before[k], after[k]) for k in trained):
            break
    for name, param in model.named_parameters():
        assert torch.isfinite(param).all(), name
        moved = not torch.equal(before[name], param)
        assert moved == (name in trained), name
    return log


@pytest.mark.parametrize('device,wrapper_type,dtype', wrappers())
def test_amp_phase1(device, wrapper_type, dtype, monkeypatch):
    monkeypatch.setattr(wrapper_module, 'get_device', lambda: device)
    torch.manual_seed(0)
    model = phase1_model().to(device)
    wrapper = wrapper_type(optimizer=sgd(model), dtype=dtype)
    log = train_until_updated(model, wrapper,
                              {'backbone.prompt', 'head.fc.weight'})
    assert {'loss_cb', 'loss_ib'} <= set(log)


@pytest.mark.parametrize('device,wrapper_type,dtype', wrappers())
def test_amp_phase2(device, wrapper_type, dtype, monkeypatch):
    monkeypatch.setattr(wrapper_module, 'get_device', lambda: device)
    torch.manual_seed(0)
    model = phase2_model().to(device)
    wrapper = wrapper_type(optimizer=sgd(model), dtype=dtype)
    log = train_until_updated(model, wrapper,
                              {'neck.prompt', 'neck.key', 'head.fc.weight'})
    assert {'loss_cb', 'loss_ib', 'loss_match'} <= set(log)


@pytest.mark.slow
def test_train_py_amp_on_cpu(tmp_path):
    """tools/train.py --amp without GPU picks the CPU wrapper: phase 1."""
    torch.manual_seed(0)
    vit = VisionTransformer(
        arch=dict(
            embed_dims=64, num_layers=6, num_heads=4,
            feedforward_channels=128),
        img_size=32,
        patch_size=8)
    torch.save(dict(state_dict=vit.state_dict()), tmp_path / 'vit.pth')
    work_dir = tmp_path / 'work'
    proc = subprocess.run([
        sys.executable, 'tools/train.py', 'configs/lpt/phase1_digits.py',
        '--amp', '--work-dir',
        str(work_dir), '--cfg-options',
        f'model.backbone.init_cfg.checkpoint={tmp_path / "vit.pth"}',
        'optim_wrapper.dtype=bfloat16', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1'
    ],
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          env=dict(
                              os.environ,
                              CUDA_VISIBLE_DEVICES='',
                              OMP_NUM_THREADS='1',
                              PYTHONUNBUFFERED='1'))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    losses = re.findall(r' (loss\w*): (\S+)', out)
    assert losses, out[-3000:]
    assert all(math.isfinite(float(v)) for _, v in losses), losses
    ckpt = torch.load(work_dir / 'epoch_1.pth', map_location='cpu')
    assert 'loss_scaler' in ckpt['optimizer']
    assert 'long_tail/few' in out
    dumped = (work_dir / 'phase1_digits.py').read_text()
    assert "type='CPUAmpOptimWrapper'" in dumped
