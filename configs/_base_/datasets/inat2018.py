# iNaturalist 2018: 8,142 classes, 437,513 training and 24,426 validation
# images, COCO-style JSON annotations. Layout (see README):
#   data/inat2018/train2018.json, val2018.json, train_val2018/...
_base_ = ['./lt_pipelines_224.py']

dataset_type = 'INat2018'
data_root = 'data/inat2018/'
num_classes = 8142
# Images per stream per GPU: 8 GPUs x 32 = the spec's 256.
samples_per_stream = 32

train_dataloader = dict(
    batch_size=2 * samples_per_stream,  # class-balanced + instance-balanced
    num_workers=8,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='train2018.json',
        pipeline={{_base_.train_pipeline}}),
    sampler=dict(type='DualClassBalancedSampler', num_samples_cls=4),
    # One batch of each stream per step, half the loader's batch_size each.
    batch_sampler=dict(type='DualStreamBatchSampler'),
)

val_dataloader = dict(
    batch_size=64,
    num_workers=8,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='val2018.json',
        train_ann_file='train2018.json',
        pipeline={{_base_.test_pipeline}}),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
# Shot groups by training count: many > 100, medium 20..100, few < 20.
val_evaluator = dict(
    type='LongTailAccuracy', many_shot_thr=100, few_shot_thr=20)

test_dataloader = val_dataloader
test_evaluator = val_evaluator
