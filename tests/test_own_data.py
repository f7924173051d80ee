"""Your own images with LPT: MMPretrain's CustomDataset (both layouts) and
MMEngine's wrappers with the dual sampler, shot groups from the training
counts in every client, and the bad inputs that must stop early."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TOOLS, run_python
from mmengine.config import Config

import lpt_mmpretrain  # noqa: F401
from lpt_mmpretrain.datasets import (DualClassBalancedSampler,
                                     StreamIndexDataset, check_dataset_paths,
                                     check_same_classes, checkpoint_counts,
                                     training_counts)
from lpt_mmpretrain.engine.hooks.class_counts_hook import check_num_classes
from lpt_mmpretrain.engine.runner.resumable_train_loop import \
    streamed_dataloader_cfg
from lpt_mmpretrain.structures.dual_stream import STREAM_KEY
from lpt_tools.data.digit_folders import CLASS_NAMES, export_digit_folders

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / 'configs' / 'lpt'
# The exported digits' training counts, label order (DigitsLT, ratio 10).
COUNTS = [84, 65, 50, 38, 30, 23, 18, 14, 10, 8]
PIPELINE = [dict(type='CheckedLoadImageFromFile'), dict(type='PackInputs')]


def _metrics(stdout):
    metrics = dict(re.findall(r'(long_tail/[a-z0-9_]+): ([\d.]+)', stdout))
    assert 'long_tail/top1' in metrics, stdout[-3000:]
    return {k: float(v) for k, v in metrics.items()}


def _groups_line(stdout):
    lines = [ln for ln in stdout.splitlines() if 'per shot group' in ln]
    assert lines, stdout[-3000:]
    return lines[-1]


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    """The exported tree, in-process."""
    root = tmp_path_factory.mktemp('digits_tree')
    written = export_digit_folders(str(root))
    assert written == dict(train=sum(COUNTS), val=300)
    return root


def _custom(root, **kwargs):
    from mmpretrain.registry import DATASETS
    cfg = dict(
        type='CustomDataset',
        data_root=str(root),
        data_prefix='train',
        pipeline=PIPELINE)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_export_layouts(tree):
    folders = sorted(p.name for p in (tree / 'train').iterdir())
    assert folders == list(CLASS_NAMES)
    suffixes = {p.suffix for p in (tree / 'train').rglob('*.*')}
    assert suffixes == {'.png', '.jpg'}
    with pytest.raises(FileExistsError, match='nothing was written'):
        export_digit_folders(str(tree))


@pytest.mark.parametrize('layout', ['folders', 'ann_file'])
def test_custom_dataset_with_dual_sampler(tree, layout):
    kwargs = {} if layout == 'folders' else dict(
        data_prefix='',
        ann_file='meta/train.txt',
        classes=str(tree / 'meta' / 'classes.txt'))
    dataset = StreamIndexDataset(_custom(tree, **kwargs))
    assert training_counts(dataset) == (COUNTS, CLASS_NAMES)
    assert dataset.metainfo['cls_num_list'] == COUNTS
    sampler = DualClassBalancedSampler(dataset, batch_size=8, seed=0)
    index, stream = next(iter(sampler))
    sample = dataset[(index, stream)]
    assert sample['data_samples'].metainfo[STREAM_KEY] == stream
    assert int(sample['data_samples'].gt_label) == \
        dataset.get_gt_labels()[index]
    assert dataset[0]['inputs'].shape == (3, 32, 32)  # ints pass through


def test_loop_wraps_any_dataset_only_for_the_dual_sampler(tree):
    dataset = dict(
        type='CustomDataset',
        data_root=str(tree),
        data_prefix='train',
        pipeline=PIPELINE)
    plain = dict(dataset=dataset, sampler=dict(type='DefaultSampler'))
    assert streamed_dataloader_cfg(plain) is plain
    dual = streamed_dataloader_cfg(
        dict(dataset=dataset, sampler=dict(type='DualClassBalancedSampler')))
    assert isinstance(dual['dataset'], StreamIndexDataset)


def test_wrappers_count_distinct_images(tree):
    from mmpretrain.registry import DATASETS
    base = _custom(tree)
    repeat = DATASETS.build(dict(type='RepeatDataset', dataset=base, times=3))
    concat = DATASETS.build(dict(type='ConcatDataset', datasets=[base, base]))
    balanced = DATASETS.build(
        dict(type='ClassBalancedDataset', dataset=base, oversample_thr=0.1))
    for wrapper, counts in ((repeat, COUNTS), (balanced, COUNTS),
                            (concat, [2 * n for n in COUNTS])):
        wrapped = StreamIndexDataset(wrapper)
        assert wrapped.metainfo['cls_num_list'] == counts
        # the sampler draws over the items the loader sees (repeats too)
        sampler = DualClassBalancedSampler(wrapped, batch_size=8, seed=0)
        assert sampler.iters_per_epoch == len(wrapper) // 8
        index, stream = next(iter(sampler))
        assert wrapped[(index,
                        stream)]['data_samples'].metainfo[STREAM_KEY] == stream


def test_bad_inputs_name_problem_and_fix(tree, tmp_path):
    # an empty class folder
    bad = tmp_path / 'empty'
    (bad / 'train' / 'cats').mkdir(parents=True)
    (bad / 'train' / 'dogs').mkdir()
    src = next((tree / 'train' / CLASS_NAMES[0]).glob('*.png'))
    (bad / 'train' / 'dogs' / 'a.png').write_bytes(src.read_bytes())
    with pytest.raises(
            ValueError, match=r"class 0 \('cats'\).*remove the "
            'empty folder'):
        StreamIndexDataset(_custom(bad))
    # a label out of range in an annotation file
    ann = tmp_path / 'bad.txt'
    ann.write_text(f'train/{CLASS_NAMES[0]}/{src.name} 0\n'
                   f'train/{CLASS_NAMES[0]}/{src.name} 12\n')
    with pytest.raises(ValueError, match=r'label 12 .*annotation file'):
        StreamIndexDataset(
            _custom(
                tree,
                data_prefix='',
                ann_file=str(ann),
                classes=str(tree / 'meta' / 'classes.txt')))
    # val / test classes that training lacks, or in another order
    with pytest.raises(ValueError, match=r"\['birds'\].*same `classes=`"):
        check_same_classes(('cats', 'dogs'), ('cats', 'birds'),
                           'val_dataloader', 'the training data')
    with pytest.raises(ValueError, match='another order'):
        check_same_classes(('a', 'b'), ('b', 'a'), 'test_dataloader', 'x')
    # a head that predicts another number of classes
    with pytest.raises(
            ValueError,
            match=r'predicts 7 classes.*has 10 '
            r'classes.*model.head.num_classes=10'):
        check_num_classes(7, 10, 'the training data')
    # a data root that does not exist
    with pytest.raises(
            FileNotFoundError,
            match=r'data_root: .*nowhere does '
            'not exist.*LPT_DATA_ROOT=PATH'):
        check_dataset_paths(
            dict(type='CustomDataset', data_root=str(tmp_path / 'nowhere')),
            'train_dataloader.dataset')
    # a file that is no image: named, with the skip option and the checker
    (bad / 'train' / 'cats' / 'notes.png').write_text('not an image')
    dataset = _custom(bad)
    with pytest.raises(
            OSError, match=r'notes\.png.*verify_dataset\.py.*'
            'skip_bad=True'):
        dataset[[
            i for i in range(len(dataset))
            if 'notes' in dataset.get_data_info(i)['img_path']
        ][0]]


def test_training_run_validates_with_training_counts(own_data_runs):
    log = own_data_runs.phase1_log
    line = _groups_line(log)
    # 60 / 25 on 84 .. 8 training images: 2 / 3 / 5 classes (val has 30
    # images of every class: its own counts would make one group)
    assert 'many 2 (2 evaluated), medium 3 (3 evaluated), few 5' in line
    assert 'training counts from the training data (CustomDataset' in line
    assert {'long_tail/many', 'long_tail/few'} <= set(_metrics(log))


@pytest.mark.parametrize('tool', ['ours', 'packaged'])
def test_test_tools_use_the_checkpoints_counts(own_data_runs, tool, tmp_path):
    config = CONFIGS / 'phase2_own_data_standin.py'
    args = [
        config, own_data_runs.phase2_prompts, '--work-dir', tmp_path,
        '--cfg-options', f'model.phase1_checkpoint={own_data_runs.phase1_dir}'
    ]
    if tool == 'ours':
        out = run_python(
            TOOLS / 'test.py', *args, env=own_data_runs.env).stdout
    else:
        from lpt_mmpretrain.engine.compat import mmpretrain_tool_path
        out = run_python(
            mmpretrain_tool_path('test'), *args, env=own_data_runs.env).stdout
    line = _groups_line(out)
    assert 'many 2 (2 evaluated), medium 3 (3 evaluated), few 5' in line
    assert "training counts from the checkpoint's meta" in line
    assert checkpoint_counts(
        torch.load(own_data_runs.phase2_prompts,
                   weights_only=True)) == (COUNTS, CLASS_NAMES)


def test_counts_from_the_config_when_the_checkpoint_has_none(tree):
    # a test run (no training loop) on a checkpoint that records no counts:
    # ClassCountsHook counts the config's train_dataloader.dataset
    from types import SimpleNamespace

    from mmengine.runner import BaseLoop

    from lpt_mmpretrain.engine.hooks import ClassCountsHook
    from lpt_mmpretrain.evaluation import LongTailAccuracy

    class TestLoop(BaseLoop):

        def __init__(self, dataset, metric):
            self.dataloader = SimpleNamespace(dataset=dataset)
            self.evaluator = SimpleNamespace(metrics=[metric])

        def run(self):
            pass

    metric = LongTailAccuracy(many_shot_thr=60, few_shot_thr=25)
    val = _custom(tree, data_prefix='val')
    train_cfg = dict(
        type='CustomDataset', data_root=str(tree), data_prefix='train')
    runner = SimpleNamespace(
        _test_loop=TestLoop(val, metric),
        cfg=Config(dict(train_dataloader=dict(dataset=train_cfg))))
    ClassCountsHook().after_load_checkpoint(runner, dict(meta={}))
    counts, source = metric._counts()
    assert counts == COUNTS
    assert source == "the config's train_dataloader.dataset (CustomDataset)"
    # the val split's own counts (30 each) are never used
    with pytest.raises(ValueError, match='ClassCountsHook'):
        LongTailAccuracy(many_shot_thr=60, few_shot_thr=25)._counts()
    # a test split whose classes are not the checkpoint's
    other = LongTailAccuracy()
    runner._test_loop = TestLoop(val, other)
    ckpt = dict(meta=dict(cls_num_list=[3, 2], classes=['a', 'b']))
    with pytest.raises(ValueError, match='classes of test_dataloader differ'):
        ClassCountsHook().after_load_checkpoint(runner, ckpt)


def test_inferencer_predicts_folder_names(own_data_runs):
    from mmpretrain import ImageClassificationInferencer
    cfg = Config.fromfile(CONFIGS / 'phase2_own_data_standin.py')
    cfg.model.phase1_checkpoint = str(own_data_runs.phase1_dir)
    inferencer = ImageClassificationInferencer(
        cfg, pretrained=own_data_runs.phase2_prompts, device='cpu')
    images = sorted((own_data_runs.data_root / 'val').rglob('*.*'))[::7]
    results = inferencer([str(p) for p in images])
    names = [r['pred_class'] for r in results]
    assert set(names) <= set(CLASS_NAMES)
    truth = [p.parent.name for p in images]
    assert np.mean([a == b for a, b in zip(names, truth)]) > 0.3


def test_suggest_thresholds():
    from lpt_mmpretrain.evaluation import shot_group_masks
    from lpt_tools.data.distribution import suggest_thresholds
    many, few = suggest_thresholds(COUNTS)
    sizes = [m.sum() for m in shot_group_masks(COUNTS, many, few).values()]
    assert min(sizes) == 3  # 10 classes: 3 / 4 / 3 at best
    assert suggest_thresholds([5, 5, 9]) is None


def test_class_distribution_tool(tree, tmp_path, capsys):
    from conftest import load_tool
    tool = load_tool('analysis_tools/class_distribution')
    out = tmp_path / 'counts.png'
    assert tool.main(['--folder', str(tree / 'train'), '--out', str(out)]) \
        == 0
    printed = capsys.readouterr().out
    assert 'classes: 10' in printed and 'training images: 340' in printed
    assert 'imbalance ratio (largest / smallest class): 10.5' in printed
    assert 'head classes: digit 0 (84)' in printed
    # the papers' 100 / 20 on 84 .. 8 images: no many-shot class
    assert 'many > 100: 0' in printed and 'empty: many' in printed
    assert 'suggested thresholds: many_shot_thr=' in printed
    assert out.stat().st_size > 10000


def test_evaluated_long_tail_sets_give_their_training_counts(tmp_path):
    """With no counts in the checkpoint, a test split of this package that
    records the training counts (train_ann_file, or a data set in memory)
    gives them; a split file without train_ann_file (its own counts) does
    not."""
    from types import SimpleNamespace

    from lpt_mmpretrain.datasets import DigitsLT, SplitFileLTDataset
    from lpt_mmpretrain.engine.hooks.class_counts_hook import \
        _recorded_training_counts
    (tmp_path / 'a.png').write_bytes(b'')
    (tmp_path / 'test.txt').write_text('a.png 0\na.png 1\n')
    (tmp_path / 'train.txt').write_text('a.png 0\na.png 0\na.png 0\na.png 1\n')

    def loops(dataset):
        return [('test',
                 SimpleNamespace(dataloader=SimpleNamespace(dataset=dataset)))]

    def split(**kwargs):
        return SplitFileLTDataset(
            'test.txt', data_root=str(tmp_path), check_files=False, **kwargs)

    counts, _, source = _recorded_training_counts(
        loops(split(train_ann_file='train.txt')))
    assert counts == [3, 1] and 'SplitFileLTDataset' in source
    assert _recorded_training_counts(loops(split())) == (None, None, None)
    digits = DigitsLT(split='test')
    counts, _, _ = _recorded_training_counts(loops(digits))
    assert counts == digits.metainfo['cls_num_list'] and \
        counts != [30] * 10  # the training profile, not the test split's
