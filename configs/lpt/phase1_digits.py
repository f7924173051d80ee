# LPT phase 1 on DigitsLT, sized for CPUs: the same model config as the
# ViT-B runs (LPTVisionTransformer + CosineClsHead + A-GCL on both sampling
# streams) on the tiny ViT of digits_pretrain_vit_tiny.py, frozen.
_base_ = [
    '../_base_/models/lpt_vit_b16_in21k.py',
    '../_base_/datasets/digits_lt.py',
    '../_base_/default_runtime.py',
]

tiny_vit = dict(
    embed_dims=64, num_layers=6, num_heads=4, feedforward_channels=128)
# The shipped stand-in (sha256-checked when loaded): the same weights on
# every machine. See lpt_mmpretrain/checkpoints/standin.py.
pretrained = 'standin://digits_vit_tiny'

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, **tiny_vit),
        img_size=32,
        patch_size=8,
        prompt_length=5,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    head=dict(num_classes=10, in_channels=64),
)

# The spec's recipe (SGD, momentum 0.9, wd 0.01, warm-up then cosine) on a
# CPU budget: fewer epochs and a larger lr for the small batch.
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
train_cfg = dict(
    type='ResumableEpochBasedTrainLoop',
    max_epochs=max_epochs,
    val_interval=10)
val_cfg = dict()
test_cfg = dict()

# A checkpoint every 5 epochs: Ctrl-C, then --resume, loses at most 5.
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=5))
