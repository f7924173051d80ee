# The dataloader base of the split-file family (ImageNet-LT, Places-LT).
# ImageNet-LT: 1,000 classes, 115,846 training, 20,000 validation and 50,000
# test images listed in split files (`relative/path label`). Layout (see
# README):
#   data/imagenet/ImageNet_LT_{train,val,test}.txt, train/..., val/...
_base_ = ['./lt_pipelines_224.py']

dataset_type = 'ImageNetLT'
data_root = 'data/imagenet/'
num_classes = 1000
samples_per_stream = 32
# Optional class names for predictions: a text file with one name per line,
# in label order (see README). Set it per loader, e.g.
#   --cfg-options {train,val,test}_dataloader.dataset.classes=FILE
class_names = None

train_dataloader = dict(
    batch_size=2 * samples_per_stream,
    num_workers=8,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageNet_LT_train.txt',
        classes=class_names,
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
        ann_file='ImageNet_LT_val.txt',
        classes=class_names,
        train_ann_file='ImageNet_LT_train.txt',
        pipeline={{_base_.test_pipeline}}),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(
    type='LongTailAccuracy', many_shot_thr=100, few_shot_thr=20)

# The test split (50 images per class).
test_dataloader = dict(
    batch_size=64,
    num_workers=8,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageNet_LT_test.txt',
        classes=class_names,
        train_ann_file='ImageNet_LT_train.txt',
        pipeline={{_base_.test_pipeline}}),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
test_evaluator = val_evaluator
