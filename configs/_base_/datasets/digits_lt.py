# DigitsLT: scikit-learn's bundled 8x8 digits (no download), upscaled to
# 32 px. A long-tailed training split (imbalance ratio 10, class 0 the most
# frequent), a balanced test split, and a balanced, disjoint `pretrain` split
# that the demo uses to pretrain the tiny ViT. Sized for CPUs.
dataset_type = 'DigitsLT'
img_size = 32
imbalance_ratio = 10
samples_per_stream = 16
pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=2 * samples_per_stream,
    num_workers=0,
    dataset=dict(
        type=dataset_type,
        split='train',
        imbalance_ratio=imbalance_ratio,
        img_size=img_size,
        pipeline=pipeline),
    sampler=dict(
        type='DualClassBalancedSampler',
        batch_size=samples_per_stream,
        num_samples_cls=4),
)

val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    dataset=dict(
        type=dataset_type,
        split='test',
        imbalance_ratio=imbalance_ratio,
        img_size=img_size,
        pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
# 10 classes with 84, 65, 50, 38, 30, 23, 18, 14, 10, 8 training images (340):
# the papers' thresholds scaled down: many 2, medium 3, few 5 classes.
val_evaluator = dict(type='LongTailAccuracy', many_shot_thr=60, few_shot_thr=25)

test_dataloader = val_dataloader
test_evaluator = val_evaluator
