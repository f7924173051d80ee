# Baseline for the DigitsLT demo: a linear probe. The same frozen tiny ViT as
# phase1_digits.py (LPTVisionTransformer with prompt_length=0: no prompts,
# every weight frozen, eval mode), a plain linear classifier trained with
# cross-entropy on the same long-tailed training split with plain
# (instance-balanced) sampling, and the same optimiser, schedule and epochs
# as phase 1. No long-tail technique: what LPT is compared with.
_base_ = [
    '../_base_/datasets/digits_lt.py',
    '../_base_/default_runtime.py',
]

tiny_vit = dict(
    embed_dims=64, num_layers=6, num_heads=4, feedforward_channels=128)
pretrained = 'work_dirs/digits_pretrain_vit_tiny/epoch_15.pth'

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='LPTVisionTransformer',
        arch=tiny_vit,
        img_size=32,
        patch_size=8,
        prompt_length=0,
        frozen=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    data_preprocessor=dict(
        mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
)

# Plain sampling: every image once per epoch, in random order.
train_dataloader = dict(
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True))

# phase1_digits.py's optimiser and schedule.
base_lr = 0.05
max_epochs = 40
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=base_lr, momentum=0.9, weight_decay=0.01))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-6 / base_lr,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - 1,
        by_epoch=True,
        begin=1,
        end=max_epochs,
        convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=max_epochs))
# No class counts, no second stream, no prompts to save: only the exact-resume
# seeding of the LPT runs.
custom_hooks = [dict(type='IterSeedHook')]
