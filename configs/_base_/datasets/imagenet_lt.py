# ImageNet-LT: 1,000 classes, 115,846 training, 20,000 validation and 50,000
# test images listed in split files (`relative/path label`). Layout (see README):
#   data/imagenet/ImageNet_LT_{train,val,test}.txt, train/..., val/...
_base_ = ['./lt_pipelines_224.py']

dataset_type = 'ImageNetLT'
data_root = 'data/imagenet/'
num_classes = 1000
samples_per_stream = 32

train_dataloader = dict(
    batch_size=2 * samples_per_stream,
    num_workers=8,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageNet_LT_train.txt',
        pipeline={{_base_.train_pipeline}}),
    sampler=dict(
        type='DualClassBalancedSampler',
        batch_size=samples_per_stream,
        num_samples_cls=4),
)

val_dataloader = dict(
    batch_size=64,
    num_workers=8,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageNet_LT_val.txt',
        train_ann_file='ImageNet_LT_train.txt',
        pipeline={{_base_.test_pipeline}}),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='LongTailAccuracy', many_shot_thr=100, few_shot_thr=20)

# The test split (50 images per class).
test_dataloader = dict(
    batch_size=64,
    num_workers=8,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageNet_LT_test.txt',
        train_ann_file='ImageNet_LT_train.txt',
        pipeline={{_base_.test_pipeline}}),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
test_evaluator = val_evaluator
