# DigitsLT: scikit-learn's bundled 8x8 digits (no download), upscaled to
# 32 px (DigitPairsLT, two digits per image: configs/lpt/*digit_pairs*).
# A long-tailed training split (imbalance ratio 10, class 0 the most
# frequent), a balanced test split, and a balanced, disjoint `pretrain` split
# on which the shipped tiny-ViT stand-in was trained. Sized for CPUs.
dataset_type = 'DigitsLT'
img_size = 32
imbalance_ratio = 10
samples_per_stream = 16
# The data sets hold arrays of img_size already; Resize brings any other
# input (an image file given to an inferencer, demo/image_demo.py) to the
# model's size. Images from files need LoadImageFromFile in front, which
# MMPretrain's inferencers add themselves.
pipeline = [
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackInputs'),
]
# The data live in memory: no loader workers, no pinned memory (CPU runs).
# persistent_workers is set because MMPretrain's packaged tools/train.py
# defaults it to True, which PyTorch refuses with num_workers=0.

train_dataloader = dict(
    batch_size=2 * samples_per_stream,
    num_workers=0,
    persistent_workers=False,
    pin_memory=False,
    dataset=dict(
        type=dataset_type,
        split='train',
        imbalance_ratio=imbalance_ratio,
        img_size=img_size,
        pipeline=pipeline),
    sampler=dict(type='DualClassBalancedSampler', num_samples_cls=4),
    # One batch of each stream per step, half the loader's batch_size each.
    batch_sampler=dict(type='DualStreamBatchSampler'),
)

val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    pin_memory=False,
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
val_evaluator = dict(
    type='LongTailAccuracy', many_shot_thr=60, few_shot_thr=25)

test_dataloader = val_dataloader
test_evaluator = val_evaluator

# Test-time augmentation (--tta): LIFT's five crops, scaled to 32 px (LIFT
# adds 24 px to 224; 4 px here), averaged by `tta_model`.
tta_expand = 4
tta_pipeline = [
    dict(type='Resize', scale=(img_size + tta_expand, img_size + tta_expand)),
    dict(type='FiveCrop', crop_size=img_size),
]
