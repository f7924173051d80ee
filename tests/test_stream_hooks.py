from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.dataset import pseudo_collate
from mmengine.runner import IterBasedTrainLoop, Runner
from mmpretrain.datasets import BaseDataset
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import HOOKS
from mmpretrain.structures import DataSample
from torch.utils.data import DataLoader, Dataset

from lpt_mmpretrain.datasets.samplers import (DualClassBalancedSampler,
                                              DualStreamBatchSampler)
from lpt_mmpretrain.engine.hooks.class_counts_hook import ClassCountsHook
from lpt_mmpretrain.engine.hooks.dual_stream_schedule_hook import \
    DualStreamScheduleHook
from lpt_mmpretrain.structures import STREAM_KEY

COUNTS = [6, 3, 2, 1]


def make_model(cls_num_list=None, ib_loss=True):
    loss = dict(type='AsymmetricGCLLoss', cls_num_list=cls_num_list)
    return ImageClassifier(
        backbone=dict(
            type='ResNet', depth=18, stem_channels=8, base_channels=8),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='CosineClsHead',
            num_classes=len(COUNTS),
            in_channels=64,
            loss=loss,
            ib_loss=dict(loss, gamma_pos=0.5, gamma_neg=8.)
            if ib_loss else None),
        data_preprocessor=dict(type='ClsDataPreprocessor'))


def fake_runner(model, dataset=None, epoch=0, max_epochs=1):
    return SimpleNamespace(
        model=model,
        epoch=epoch,
        max_epochs=max_epochs,
        train_dataloader=SimpleNamespace(dataset=dataset))


class LabelListDataset(BaseDataset):
    """An MMPretrain data set without cls_num_list in its metainfo."""

    def __init__(self, labels, classes, **kwargs):
        self._labels = labels
        super().__init__(ann_file='', classes=classes, **kwargs)

    def load_data_list(self):
        return [
            dict(img_path=f'{i}.png', gt_label=label)
            for i, label in enumerate(self._labels)
        ]


def labels_from_counts(counts):
    return [c for c, n in enumerate(counts) for _ in range(n)]


def test_hooks_registered():
    assert isinstance(
        HOOKS.build(dict(type='ClassCountsHook')), ClassCountsHook)
    assert isinstance(
        HOOKS.build(dict(type='DualStreamScheduleHook')),
        DualStreamScheduleHook)


def test_counts_from_metainfo_into_every_loss():
    model = make_model()
    dataset = SimpleNamespace(
        metainfo=dict(classes=list('abcd'), cls_num_list=COUNTS))
    ClassCountsHook().before_train(fake_runner(model, dataset))
    for loss in (model.head.loss_module, model.head.ib_loss_module):
        assert loss.cls_num_list.tolist() == COUNTS
        assert loss.noise_eps[0] == 0 and loss.noise_eps[-1] == 1


def test_counts_from_labels_and_wrapped_model():
    model = make_model(ib_loss=False)
    dataset = LabelListDataset(
        labels_from_counts(COUNTS), classes=list('abcd'), lazy_init=True)
    ClassCountsHook().before_train(
        fake_runner(nn.DataParallel(model), dataset))
    assert model.head.loss_module.cls_num_list.tolist() == COUNTS


def test_counts_from_get_cat_ids():

    class CatIdsDataset:
        metainfo = dict(classes=list('abcd'))
        labels = labels_from_counts(COUNTS)

        def __len__(self):
            return len(self.labels)

        def get_cat_ids(self, idx):
            return [self.labels[idx]]

    counts, _ = ClassCountsHook.class_counts(CatIdsDataset())
    assert counts == COUNTS


def test_empty_class_in_labels_is_error():
    model = make_model()
    dataset = LabelListDataset(
        labels_from_counts([2, 0, 1, 1]), classes=list('abcd'))
    with pytest.raises(
            ValueError, match=r"no training image.*class 1 \('b'\)\."):
        ClassCountsHook().before_train(fake_runner(model, dataset))


def test_existing_counts_kept_or_mismatch_error():
    model = make_model(cls_num_list=[9, 9, 9, 1])
    dataset = SimpleNamespace(metainfo=dict(cls_num_list=COUNTS))
    ClassCountsHook().before_train(fake_runner(model, dataset))
    assert model.head.loss_module.cls_num_list.tolist() == [9, 9, 9, 1]

    dataset = SimpleNamespace(metainfo=dict(cls_num_list=[5, 4, 3, 2, 1]))
    with pytest.raises(ValueError, match='counts of 4 classes'):
        ClassCountsHook().before_train(fake_runner(model, dataset))


def test_metainfo_counts_classes_mismatch():
    dataset = SimpleNamespace(
        metainfo=dict(classes=list('abc'), cls_num_list=COUNTS))
    with pytest.raises(ValueError, match='must match'):
        ClassCountsHook.class_counts(dataset)


def test_uncountable_dataset():
    with pytest.raises(TypeError, match='cls_num_list='):
        ClassCountsHook.class_counts(SimpleNamespace(metainfo={}))


@pytest.mark.parametrize('epoch,expected', [(0, 0.5), (4, 0.25), (7, 0.5 / 8)])
def test_schedule_hook(epoch, expected):
    model = make_model(cls_num_list=COUNTS)
    runner = fake_runner(nn.DataParallel(model), epoch=epoch, max_epochs=8)
    DualStreamScheduleHook().before_train_epoch(runner)
    assert model.head.ib_weight == pytest.approx(expected)


def test_schedule_hook_refuses_iter_based_loop():
    runner = fake_runner(make_model())
    runner.train_loop = IterBasedTrainLoop.__new__(IterBasedTrainLoop)
    with pytest.raises(ValueError, match='by_epoch=True'):
        DualStreamScheduleHook().before_train_epoch(runner)


class StreamDataset(Dataset):
    """Alternating class-balanced / instance-balanced toy samples."""

    metainfo = dict(classes=list('abcd'), cls_num_list=COUNTS)

    def __len__(self):
        return 8

    def __getitem__(self, idx):
        gen = torch.Generator().manual_seed(idx)
        sample = DataSample().set_gt_label(idx % len(COUNTS))
        sample.set_metainfo({STREAM_KEY: idx % 2})
        return dict(
            inputs=torch.randint(0, 256, (3, 16, 16), generator=gen),
            data_samples=sample)


def test_runner_smoke(tmp_path):
    model = make_model()
    progress = []
    set_train_progress = model.head.set_train_progress

    def spy(epoch, max_epochs):
        progress.append((epoch, max_epochs))
        set_train_progress(epoch, max_epochs)

    model.head.set_train_progress = spy
    runner = Runner(
        model=model,
        work_dir=str(tmp_path),
        train_dataloader=DataLoader(
            StreamDataset(), batch_size=4, collate_fn=pseudo_collate),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=None),
        custom_hooks=[
            dict(type='ClassCountsHook'),
            dict(type='DualStreamScheduleHook')
        ],
        default_scope='mmpretrain')
    runner.train()
    assert progress == [(0, 2), (1, 2)]
    assert model.head.ib_weight == pytest.approx(0.25)
    assert model.head.loss_module.cls_num_list.tolist() == COUNTS
    assert model.head.ib_loss_module.cls_num_list.tolist() == COUNTS
    hub = runner.message_hub
    assert hub.get_scalar('train/loss_cb').current() > 0
    assert hub.get_scalar('train/loss_ib').current() > 0
    log = ''.join(p.read_text() for p in tmp_path.glob('*/*.log'))
    assert log.count('ClassCountsHook: set the class counts') == 2
    assert 'epoch 1/2, `head` instance-balanced loss weight = 0.25' in log


def test_counts_reach_the_loss_through_the_head():
    model = make_model()
    received = []
    set_class_counts = model.head.set_class_counts

    def spy(counts):
        received.append(list(counts))
        return set_class_counts(counts)

    model.head.set_class_counts = spy
    dataset = SimpleNamespace(metainfo=dict(cls_num_list=COUNTS))
    ClassCountsHook().before_train(fake_runner(model, dataset))
    assert received == [COUNTS]
    assert model.head.ib_loss_module.cls_num_list.tolist() == COUNTS


def test_head_without_counts_is_left_alone():
    model = ImageClassifier(
        backbone=dict(
            type='ResNet', depth=18, stem_channels=8, base_channels=8),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=4, in_channels=64))
    # no counts are read: the data set need not have any
    ClassCountsHook().before_train(fake_runner(model, SimpleNamespace()))


class LabelsOnlyDataset(Dataset):
    """Labels for DualClassBalancedSampler."""

    accepts_stream_index = True
    metainfo = dict(classes=list('abcd'))

    def __init__(self):
        self.labels = labels_from_counts([8, 4, 2, 2])

    def __len__(self):
        return len(self.labels)

    def get_gt_labels(self):
        return self.labels

    def __getitem__(self, idx):
        return idx


def test_schedule_hook_refuses_a_loader_batch_that_is_not_twice():
    dataset = LabelsOnlyDataset()
    sampler = DualClassBalancedSampler(dataset, 4, num_samples_cls=2, seed=0)
    runner = fake_runner(make_model())
    runner.train_dataloader = DataLoader(dataset, 16, sampler=sampler)
    with pytest.raises(ValueError, match=r'\(16\) must be 2 x .* \(4\)'):
        DualStreamScheduleHook().before_train(runner)
    runner.train_dataloader = DataLoader(dataset, 8, sampler=sampler)
    DualStreamScheduleHook().before_train(runner)
    # the batch sampler writes the batch once: nothing to check
    sampler = DualClassBalancedSampler(dataset, num_samples_cls=2, seed=0)
    runner.train_dataloader = DataLoader(
        dataset, batch_sampler=DualStreamBatchSampler(sampler, 8))
    DualStreamScheduleHook().before_train(runner)
