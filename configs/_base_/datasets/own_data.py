# Your own images with MMPretrain's CustomDataset, one sub-folder per class:
#   $LPT_DATA_ROOT/train/<class name>/*.jpg|png   (the training split)
#   $LPT_DATA_ROOT/val/<class name>/*.jpg|png     (val and test)
# Set the data root once, by the environment (MMEngine reads
# {{$VAR:default}} when it parses the config):
#   LPT_DATA_ROOT=/path/to/data python tools/train.py CONFIG
# Class names are the folder names (sorted); val/ must have the same folders
# (ClassCountsHook refuses splits whose classes differ). The annotation-file
# layout: the *_ann.py templates. docs/own_data.md explains both.
_base_ = ['./lt_pipelines_224.py']

dataset_type = 'CustomDataset'
data_root = '{{$LPT_DATA_ROOT:data/my_data}}'
samples_per_stream = 32

train_dataloader = dict(
    batch_size=2 * samples_per_stream,
    num_workers=4,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='train',
        pipeline={{_base_.train_pipeline}}),
    # Any MMPretrain data set works with the dual sampler:
    # ResumableEpochBasedTrainLoop wraps it in a StreamIndexDataset.
    sampler=dict(type='DualClassBalancedSampler', num_samples_cls=4),
    batch_sampler=dict(type='DualStreamBatchSampler'),
)

val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='val',
        pipeline={{_base_.test_pipeline}}),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
# Shot groups by the TRAINING counts, which ClassCountsHook gives the metric
# (in tools/test.py: from the checkpoint). The papers' thresholds; for a
# small data set pick yours with tools/analysis_tools/class_distribution.py.
val_evaluator = dict(
    type='LongTailAccuracy', many_shot_thr=100, few_shot_thr=20)

test_dataloader = val_dataloader
test_evaluator = val_evaluator
