"""The LR schedule: the released per-epoch one by default, the per-iteration
one selectable (configs/_base_/schedules/lpt_sgd_90e{,_iter}.py)."""
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmpretrain.registry import PARAM_SCHEDULERS
from torch.utils.data import DataLoader, Dataset

import lpt_mmpretrain  # noqa: F401
from lpt_mmpretrain.engine.schedulers import WarmupCosineLR

ROOT = Path(__file__).resolve().parents[1]
SCHEDULES = ROOT / 'configs' / '_base_' / 'schedules'
BASE_LR = 0.02
WARMUP_LR = 1e-6


def released_lr(epoch: int, max_epochs: int, base_lr: float = BASE_LR):
    """The released script's lr in an epoch (the issue's formula)."""
    if epoch == 0:
        return WARMUP_LR
    return base_lr / 2 * (1 + math.cos(math.pi * epoch / max_epochs))


def sgd(lr: float = BASE_LR) -> OptimWrapper:
    model = nn.Linear(2, 2)
    return OptimWrapper(torch.optim.SGD(model.parameters(), lr=lr))


def build_default(optim_wrapper: OptimWrapper, max_epochs: int):
    """The scheduler of lpt_sgd_90e.py, with `end` set as the runner does."""
    cfg = Config.fromfile(str(SCHEDULES / 'lpt_sgd_90e.py'))
    assert len(cfg.param_scheduler) == 1
    sched_cfg = dict(cfg.param_scheduler[0])
    sched_cfg.setdefault('end', max_epochs)
    init_default_scope('mmpretrain')
    return PARAM_SCHEDULERS.build(
        sched_cfg, default_args=dict(optimizer=optim_wrapper, epoch_length=7))


def run_epochs(optim_wrapper, scheduler, max_epochs):
    """lr of each epoch, stepping as MMEngine's ParamSchedulerHook does."""
    lrs = []
    for _ in range(max_epochs):
        lrs.append(optim_wrapper.get_lr()['lr'][0])
        optim_wrapper.step()  # an (empty) update, then the epoch's step
        scheduler.step()
    return lrs


def test_default_schedule_is_the_released_formula():
    optim_wrapper = sgd()
    scheduler = build_default(optim_wrapper, 90)
    assert isinstance(scheduler, WarmupCosineLR)
    assert scheduler.by_epoch and scheduler.T_max == 90
    lrs = run_epochs(optim_wrapper, scheduler, 90)
    assert lrs[0] == WARMUP_LR
    for epoch, lr in enumerate(lrs):
        assert lr == pytest.approx(
            released_lr(epoch, 90), rel=1e-12, abs=1e-15)
    assert lrs[1] < BASE_LR  # the cosine starts at t = 1, not at the peak


def test_default_schedule_equals_timm_cosine_scheduler():
    """The released script: timm's CosineLRScheduler(warmup_lr_init=1e-6,
    t_initial=90, cycle_decay=0.1, warmup_t=1), scheduler.step(epoch + 1)
    after each epoch."""
    timm_scheduler = pytest.importorskip('timm.scheduler')
    model = nn.Linear(2, 2)
    timm_opt = torch.optim.SGD(model.parameters(), lr=BASE_LR)
    timm_sched = timm_scheduler.CosineLRScheduler(
        timm_opt,
        warmup_lr_init=1e-6,
        t_initial=90,
        cycle_decay=0.1,
        warmup_t=1)
    expected = []
    for epoch in range(90):
        expected.append(timm_opt.param_groups[0]['lr'])
        timm_sched.step(epoch + 1)
    optim_wrapper = sgd()
    ours = run_epochs(optim_wrapper, build_default(optim_wrapper, 90), 90)
    assert ours == pytest.approx(expected, rel=1e-12, abs=1e-15)


class _Data(Dataset):

    def __len__(self):
        return 6

    def __getitem__(self, index):
        return torch.full((2, ), float(index))


class _Model(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return dict(loss=self.fc(torch.stack(inputs)).pow(2).mean())


class _RecordLR(Hook):

    def __init__(self):
        self.lrs = []  # (epoch, lr) before every training iteration

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        lr = runner.optim_wrapper.get_lr()['lr'][0]
        self.lrs.append((runner.epoch, lr))


def train_and_record(tmp_path, schedule_file: str, max_epochs: int):
    cfg = Config.fromfile(str(SCHEDULES / schedule_file))
    recorder = _RecordLR()
    runner = Runner(
        model=_Model(),
        work_dir=str(tmp_path),
        train_dataloader=DataLoader(
            _Data(), batch_size=2,
            collate_fn=lambda batch: dict(inputs=batch)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=cfg.optim_wrapper,
        param_scheduler=cfg.param_scheduler,
        default_hooks=dict(checkpoint=None, logger=None),
        custom_hooks=[recorder],
        default_scope='mmpretrain')
    runner.train()
    return recorder.lrs


def test_one_epoch_run_is_warm_up_only(tmp_path):
    assert train_and_record(
        tmp_path, 'lpt_sgd_90e.py', max_epochs=1) == [(0, WARMUP_LR)] * 3


def test_runner_steps_the_default_schedule_once_per_epoch(tmp_path):
    lrs = train_and_record(tmp_path, 'lpt_sgd_90e.py', max_epochs=5)
    assert len(lrs) == 5 * 3  # 3 iterations per epoch
    for epoch, lr in lrs:
        # max_epochs from train_cfg is the cosine's period E
        assert lr == pytest.approx(released_lr(epoch, 5), rel=1e-12)


def test_per_iteration_schedule_is_selectable(tmp_path):
    lrs = train_and_record(tmp_path, 'lpt_sgd_90e_iter.py', max_epochs=5)
    epoch0 = [lr for epoch, lr in lrs if epoch == 0]
    assert epoch0[0] == pytest.approx(WARMUP_LR)
    assert epoch0 == sorted(epoch0) and len(set(epoch0)) == 3  # a ramp
    # then a per-iteration cosine from the base lr over epochs 1 .. E - 1
    later = [lr for epoch, lr in lrs if epoch >= 1]
    t_max = 4 * 3
    for step, lr in enumerate(later):
        expected = BASE_LR / 2 * (1 + math.cos(math.pi * step / t_max))
        assert lr == pytest.approx(expected, rel=1e-9)


def test_warmup_lr_stays_absolute_when_the_lr_is_scaled():
    """auto_scale_lr scales the optimizer's lr; the warm-up lr is absolute
    (timm's warmup_lr_init), the cosine follows the scaled lr."""
    optim_wrapper = sgd(lr=2 * BASE_LR)
    lrs = run_epochs(optim_wrapper, build_default(optim_wrapper, 90), 3)
    assert lrs[0] == WARMUP_LR
    assert lrs[1] == pytest.approx(released_lr(1, 90, 2 * BASE_LR))


def test_resume_continues_the_schedule():
    optim_wrapper = sgd()
    scheduler = build_default(optim_wrapper, 10)
    run_epochs(optim_wrapper, scheduler, 4)  # epochs 0..3 done
    state = scheduler.state_dict()

    # A fresh run: optimizer state (lr, initial_lr) and scheduler state are
    # loaded as the runner's resume does.
    resumed_wrapper = sgd(lr=0.5)
    resumed = build_default(resumed_wrapper, 10)
    resumed_wrapper.load_state_dict(optim_wrapper.state_dict())
    resumed.load_state_dict(state)
    lrs = run_epochs(resumed_wrapper, resumed, 6)
    assert lrs == pytest.approx([released_lr(e, 10) for e in range(4, 10)],
                                rel=1e-12)


def test_warmup_of_several_steps_and_eta_min():
    optim_wrapper = sgd(lr=1.)
    scheduler = WarmupCosineLR(
        optim_wrapper,
        T_max=10,
        warmup_steps=4,
        warmup_start_lr=0.2,
        eta_min=0.1)
    lrs = run_epochs(optim_wrapper, scheduler, 10)
    assert lrs[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert lrs[4] == pytest.approx(0.1 + 0.45 * (1 + math.cos(0.4 * math.pi)))


def test_convert_to_iter_based_multiplies_every_length():
    optim_wrapper = sgd()
    init_default_scope('mmpretrain')
    scheduler = PARAM_SCHEDULERS.build(
        dict(
            type='WarmupCosineLR',
            by_epoch=True,
            begin=0,
            end=3,
            convert_to_iter_based=True),
        default_args=dict(optimizer=optim_wrapper, epoch_length=4))
    assert not scheduler.by_epoch
    assert (scheduler.T_max, scheduler.warmup_steps, scheduler.end) == (12, 4,
                                                                        12)
    lrs = run_epochs(optim_wrapper, scheduler, 12)  # one step per iteration
    assert lrs[0] == WARMUP_LR
    assert lrs[2] == pytest.approx(WARMUP_LR + 2 * (BASE_LR - WARMUP_LR) / 4)
    assert lrs[6] == pytest.approx(BASE_LR / 2 * (1 + math.cos(math.pi / 2)))


@pytest.mark.parametrize('kwargs, match', [
    (dict(), 'needs the cosine period'),
    (dict(T_max=5, warmup_steps=6), 'warmup_steps must be'),
    (dict(T_max=0), 'T_max must be'),
    (dict(T_max=5, warmup_start_lr=-1.), 'must be >= 0'),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WarmupCosineLR(sgd(), **kwargs)


def _lpt_configs():
    # The stand-in's pretraining and the configs on the shipped tiny
    # stand-in (DigitsLT, DigitPairsLT, the own-data templates) run
    # CPU-sized recipes of their own.
    from lpt_mmpretrain.checkpoints.standin import STANDIN_SCHEME

    def on_standin(path):
        init = Config.fromfile(str(path)).model.backbone.get('init_cfg') or {}
        return str(init.get('checkpoint', '')).startswith(STANDIN_SCHEME)

    return sorted(
        p for p in (ROOT / 'configs' / 'lpt').glob('*.py')
        if 'digit' not in p.name and not on_standin(p))


@pytest.mark.parametrize('path', _lpt_configs(), ids=lambda p: p.name)
def test_lpt_configs_use_the_released_schedule(path):
    cfg = Config.fromfile(str(path))
    assert [s.type for s in cfg.param_scheduler] == ['WarmupCosineLR']
    scheduler = cfg.param_scheduler[0]
    assert scheduler.by_epoch and not scheduler.get('convert_to_iter_based')
    assert scheduler.warmup_start_lr == WARMUP_LR
    assert cfg.train_cfg.max_epochs == 90
    assert cfg.optim_wrapper.optimizer.lr == BASE_LR
