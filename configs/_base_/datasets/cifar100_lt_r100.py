# CIFAR-100-LT, imbalance ratio rho = 100 (10,847 training images, LDAM-DRW
# recipe) and the balanced 10,000-image test set. `data_root` holds the
# standard `cifar-100-python/` folder (see README); nothing is downloaded.
# The dataloader base of the CIFAR family: cifar100_lt_r{50,10}.py and
# cifar10_lt_r{100,50,10}.py change only the data set fields.
# Images stay in memory, so the pipelines start without an image loader.
# They are BGR like decoded image files, so the models' data_preprocessor
# (to_rgb=True) is right for CIFAR as for every other data set.
_base_ = ['./lt_pipelines_224.py']

dataset_type = 'CIFAR100LT'
data_root = 'data/cifar100/'
num_classes = 100
imbalance_ratio = 100
samples_per_stream = 32

train_dataloader = dict(
    batch_size=2 * samples_per_stream,
    num_workers=4,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        imbalance_ratio=imbalance_ratio,
        pipeline={{_base_.train_transforms}}),
    sampler=dict(type='DualClassBalancedSampler', num_samples_cls=4),
    # One batch of each stream per step, half the loader's batch_size each.
    batch_sampler=dict(type='DualStreamBatchSampler'),
)

val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        imbalance_ratio=imbalance_ratio,
        pipeline={{_base_.test_transforms}}),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(
    type='LongTailAccuracy', many_shot_thr=100, few_shot_thr=20)

test_dataloader = val_dataloader
test_evaluator = val_evaluator
# Test-time augmentation (--tta): the five crops of lt_pipelines_224.py.
tta_pipeline = {{_base_.tta_transforms}}
