# Training config of the shipped stand-in for large-scale pretraining
# (lpt_mmpretrain/checkpoints/standins/digits_vit_tiny.pth, see its .json): a
# tiny ViT trained (all weights, cross-entropy) on single digits, the
# balanced `pretrain` split of DigitsLT, each image drawn three ways: full
# size, and at half size in the left or the right half (where DigitPairsLT
# puts the two digits of a number). Its label space is the 10 digits; the
# LPT configs freeze it (configs/lpt/phase{1,2}_digit{s,_pairs}.py). The
# split shares no image with the training and test splits of DigitsLT and
# DigitPairsLT.
_base_ = [
    '../_base_/datasets/digits_lt.py',
    '../_base_/default_runtime.py',
]

tiny_vit = dict(
    embed_dims=64, num_layers=6, num_heads=4, feedforward_channels=128)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch=tiny_vit,
        img_size=32,
        patch_size=8,
        drop_rate=0.1),
    neck=None,
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=10,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    data_preprocessor=dict(
        mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
)

pretrain_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=32,
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(
                type='DigitsLT',
                split='pretrain',
                layout='full',
                pipeline=pretrain_pipeline),
            dict(
                type='DigitsLT',
                split='pretrain',
                layout='left',
                pipeline=pretrain_pipeline),
            dict(
                type='DigitsLT',
                split='pretrain',
                layout='right',
                pipeline=pretrain_pipeline),
        ]),
    # a plain balanced split: no dual sampling here
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    batch_sampler=None,
)
val_evaluator = dict(_delete_=True, type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

max_epochs = 30
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True)
]
train_cfg = dict(
    type='ResumableEpochBasedTrainLoop',
    max_epochs=max_epochs,
    val_interval=10)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=10))
# A plain classifier: no long-tail hooks, no prompt-only checkpoints.
custom_hooks = []
randomness = dict(seed=0)
