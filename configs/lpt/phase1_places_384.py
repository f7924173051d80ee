# LPT phase 1 on Places-LT with the ViT-B/16 (IN-21k) at 384 x 384 input.
# The checkpoint is the 224-px one: MMPretrain's VisionTransformer load hook
# resizes its 14 x 14 position embedding to 24 x 24 (bicubic) when loading.
# 576 patches instead of 196 make a step about 3x more expensive; lower
# samples_per_stream (with --auto-scale-lr) if memory runs out.
_base_ = ['./phase1_places.py']

img_size = 384
# The spec's test resize keeps the 256 / 224 ratio: 438 -> center crop 384.
test_resize = 438
# Pillow's antialiased bilinear resize, as torchvision in the released code.
resize_cfg = dict(backend='pillow', interpolation='bilinear')
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, **resize_cfg),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=(test_resize, test_resize), **resize_cfg),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
# --tta: LIFT's five crops at 384 px (short edge to 384 + 24).
tta_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='ResizeEdge', scale=img_size + 24, edge='short', **resize_cfg),
    dict(type='FiveCrop', crop_size=img_size),
]

model = dict(backbone=dict(img_size=img_size))
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
