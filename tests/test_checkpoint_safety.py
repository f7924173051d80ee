import os
import pickle

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, run_python
from mmengine.fileio import get_file_backend
from mmengine.hooks import Hook
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS, HOOKS

import lpt_mmpretrain.checkpoints.saving as saving
from lpt_mmpretrain.checkpoints import atomic_torch_save
from lpt_mmpretrain.engine import compat
from lpt_mmpretrain.engine.compat.checkpoint import (AtomicLocalBackend,
                                                     load_from_safe_local,
                                                     mmengine_loads_safely,
                                                     register_safe_globals)

# What our tools and the configs' custom_imports do: both tested stacks need
# the safe loader (MMEngine 0.10.7 refuses its own training checkpoints,
# OneDL's 0.10.12 falls back to weights_only=False).
compat.install()


@DATASETS.register_module(name='_CkptSafetyToyDataset')
class ToyDataset(BaseDataset):
    """12 random 16x16 images of 3 classes, built in memory."""
    METAINFO = dict(classes=('a', 'b', 'c'))

    def __init__(self, **kwargs):
        super().__init__(
            ann_file='',
            data_root='',
            pipeline=[dict(type='PackInputs')],
            **kwargs)

    def load_data_list(self):
        rng = np.random.RandomState(0)
        return [
            dict(
                img=rng.randint(0, 255, (16, 16, 3), dtype=np.uint8),
                gt_label=i % 3) for i in range(12)
        ]


@HOOKS.register_module(name='_CkptSafetyEpochRecorder')
class EpochRecorder(Hook):
    epochs = []

    def before_train_epoch(self, runner):
        EpochRecorder.epochs.append(runner.epoch)


def build_runner(work_dir, max_epochs, name, resume=False):
    loader = dict(
        batch_size=4,
        num_workers=0,
        dataset=dict(type='_CkptSafetyToyDataset'),
        sampler=dict(type='DefaultSampler', shuffle=True),
        collate_fn=dict(type='default_collate'))
    return Runner(
        model=dict(
            type='ImageClassifier',
            data_preprocessor=dict(
                num_classes=3, mean=[127.5] * 3, std=[127.5] * 3),
            backbone=dict(
                type='VisionTransformer',
                arch=dict(
                    embed_dims=16,
                    num_layers=1,
                    num_heads=2,
                    feedforward_channels=32),
                img_size=16,
                patch_size=8),
            head=dict(
                type='VisionTransformerClsHead',
                num_classes=3,
                in_channels=16,
                loss=dict(type='CrossEntropyLoss'))),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=loader,
        val_dataloader=loader,
        val_evaluator=dict(type='Accuracy', topk=(1, )),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=True, end=1),
            dict(type='CosineAnnealingLR', by_epoch=True, begin=1)
        ],
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook',
                interval=1,
                save_best='auto',
                backend_args=dict(backend='atomic_local'))),
        custom_hooks=[dict(type='_CkptSafetyEpochRecorder')],
        resume=resume,
        randomness=dict(seed=0),
        default_scope='mmpretrain')


@pytest.fixture
def restore_safe_globals():
    saved = torch.serialization.get_safe_globals()
    yield
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals(saved)


def test_train_then_resume(tmp_path, monkeypatch, restore_safe_globals):
    puts = []
    put = AtomicLocalBackend.put

    def recording_put(self, obj, filepath):
        puts.append(os.path.basename(filepath))
        put(self, obj, filepath)

    monkeypatch.setattr(AtomicLocalBackend, 'put', recording_put)
    EpochRecorder.epochs = []
    build_runner(tmp_path, 2, 'ckpt_safety_first').train()
    assert EpochRecorder.epochs == [0, 1]
    # every checkpoint went through the atomic backend
    assert {'epoch_1.pth', 'epoch_2.pth'} <= set(puts)
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]

    ckpt = str(tmp_path / 'epoch_2.pth')
    # The checkpoint holds non-tensor types that torch refuses by default ...
    torch.serialization.clear_safe_globals()
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(ckpt)
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in unsafe
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt)
    # ... and that the allow-list covers.
    register_safe_globals()
    assert torch.serialization.get_unsafe_globals_in_checkpoint(ckpt) == []
    torch.load(ckpt)  # torch's default: weights_only=True

    EpochRecorder.epochs = []
    runner = build_runner(tmp_path, 3, 'ckpt_safety_resume', resume=True)
    runner.train()
    assert EpochRecorder.epochs == [2]  # continued, not restarted
    assert runner.epoch == 3
    resumed = torch.load(tmp_path / 'epoch_3.pth')
    assert resumed['meta']['epoch'] == 3
    assert resumed['meta']['iter'] == 3 * 3  # 3 epochs x 3 iterations
    hub = resumed['message_hub']['log_scalars']
    assert isinstance(hub['train/loss'], HistoryBuffer)
    # the loss history of the first run was restored and extended
    assert len(hub['train/loss'].data[0]) == 9


def test_local_scheme_is_ours():
    assert compat.install() == ('safe_loading', )
    assert (CheckpointLoader._get_checkpoint_loader('/a/b.pth')
            is load_from_safe_local)
    with pytest.raises(FileNotFoundError, match='can not be found'):
        _load_checkpoint('/nonexistent/ckpt.pth')


def test_load_checkpoint_into_model(tmp_path):
    model = torch.nn.Linear(3, 2)
    target = torch.nn.Linear(3, 2)
    atomic_torch_save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(eta=np.float64(1.5), hist=HistoryBuffer([1.], [1]))),
        tmp_path / 'w.pth')
    ckpt = load_checkpoint(target, str(tmp_path / 'w.pth'), map_location='cpu')
    assert torch.equal(target.weight, model.weight)
    assert ckpt['meta']['eta'] == 1.5
    assert ckpt['meta']['hist'].current() == 1.


class _SystemCall:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class _Exec:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f'open({str(self.marker)!r}, "w").close()', )


class _GetattrEscape:

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


@pytest.mark.parametrize('payload,name', [
    (_SystemCall, 'posix.system'),
    (_Exec, 'exec'),
    (_GetattrEscape, '__init__'),
])
def test_malicious_file_refused(tmp_path, payload, name):
    marker = tmp_path / 'pwned'
    obj = payload(marker) if payload is not _GetattrEscape else payload()
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, meta=obj), path)
    if payload is _SystemCall and os.name != 'posix':
        pytest.skip('os.system pickles as posix.system only on POSIX')
    with pytest.raises(pickle.UnpicklingError) as info:
        load_checkpoint(torch.nn.Linear(1, 1), str(path))
    message = str(info.value)
    assert 'Refused to load the checkpoint' in message
    assert name in message
    assert 'weights_only=False' in message and 'add_safe_globals' in message
    assert not marker.exists()
    # a plain pickle (not torch's zip format) is refused too
    with open(path, 'wb') as f:
        pickle.dump(obj, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match='Refused to load'):
        _load_checkpoint(str(path))
    assert not marker.exists()


def test_atomic_backend_registered():
    backend = get_file_backend(
        '/tmp/x.pth', backend_args=dict(backend='atomic_local'))
    assert isinstance(backend, AtomicLocalBackend)


def test_atomic_put(tmp_path):
    backend = AtomicLocalBackend()
    target = tmp_path / 'sub' / 'ckpt.pth'
    backend.put(b'good', target)  # creates the directory
    assert target.read_bytes() == b'good'
    plain = tmp_path / 'plain'
    plain.write_bytes(b'')
    assert target.stat().st_mode == plain.stat().st_mode
    backend.put_text('better', target)
    assert target.read_text() == 'better'
    backend.put(b'good', target)
    assert os.listdir(target.parent) == ['ckpt.pth']


@pytest.mark.parametrize('failing', ['replace', 'fsync'])
def test_atomic_put_failure_keeps_last_good_file(tmp_path, monkeypatch,
                                                 failing):
    target = tmp_path / 'ckpt.pth'
    AtomicLocalBackend().put(b'good', target)

    def fail(*args, **kwargs):
        raise OSError('disk full')

    monkeypatch.setattr(saving.os, failing, fail)
    with pytest.raises(OSError, match='disk full'):
        AtomicLocalBackend().put(b'new bytes that never land', target)
    monkeypatch.undo()
    assert target.read_bytes() == b'good'
    assert os.listdir(tmp_path) == ['ckpt.pth']


def test_atomic_torch_save(tmp_path):
    target = tmp_path / 'prompt.pth'
    atomic_torch_save(dict(w=torch.ones(2)), target)
    assert torch.equal(torch.load(target)['w'], torch.ones(2))
    # torch.save fails halfway (a lambda cannot be pickled)
    with pytest.raises(Exception):
        atomic_torch_save(dict(w=torch.zeros(1000), f=lambda: 0), target)
    assert torch.equal(torch.load(target)['w'], torch.ones(2))
    assert os.listdir(tmp_path) == ['prompt.pth']


def _unsafe_fallback(filename, map_location=None):
    """OneDL mmengine 0.10.12's way: weights_only=True, else False."""
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        return torch.load(
            filename, map_location=map_location, weights_only=False)


def _torch_default(filename, map_location=None):
    """MMEngine 0.10.7's way: torch.load's default (weights_only=True)."""
    return torch.load(filename, map_location=map_location)


@pytest.mark.parametrize('loader,safe', [(_unsafe_fallback, False),
                                         (_torch_default, False),
                                         (load_from_safe_local, True)])
def test_probe_tells_a_safe_loader(loader, safe, monkeypatch,
                                   restore_safe_globals):
    import mmengine.runner.checkpoint as mmengine_checkpoint
    torch.serialization.clear_safe_globals()
    if loader is load_from_safe_local:
        register_safe_globals()
    monkeypatch.setattr(mmengine_checkpoint, 'load_from_local', loader)
    assert mmengine_loads_safely() is safe


def test_import_patches_nothing_configs_install():
    """`import lpt_mmpretrain` leaves MMEngine's loader alone; a config of
    ours (custom_imports) installs the safe one, as in MMPretrain's tools."""
    code = ('import lpt_mmpretrain\n'
            'from mmengine.config import Config\n'
            'from mmengine.runner import CheckpointLoader\n'
            'name = lambda: CheckpointLoader._get_checkpoint_loader("/a.pth")'
            '.__module__\n'
            'print("import:", name())\n'
            'Config.fromfile("configs/lpt/phase1_digits.py")\n'
            'print("config:", name())\n')
    out = run_python('-c', code, cwd=REPO_ROOT).stdout
    assert 'import: mmengine.runner.checkpoint' in out
    assert 'config: lpt_mmpretrain.engine.compat.checkpoint' in out
