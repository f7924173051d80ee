# A non-prompt long-tail baseline: a fully trainable Swin-T with LPT's
# long-tail parts: cosine head, A-GCL on the class-balanced stream and on the
# (decaying) instance-balanced stream of DualClassBalancedSampler.
# Trained from scratch; to start from MMPretrain's ImageNet-1k weights add
#   backbone=dict(init_cfg=dict(type='Pretrained', prefix='backbone.',
#       checkpoint='https://download.openmmlab.com/mmclassification/v0/'
#                  'swin-transformer/swin_tiny_224_b16x64_300e_imagenet_'
#                  '20210616_090925-66df6be6.pth'))
# (check that the pretraining data does not overlap your test classes).
# No Mixup / CutMix: A-GCL needs hard labels.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='SwinTransformer', arch='tiny', img_size=224, drop_path_rate=0.2),
    # (B, 768, 7, 7) -> (B, 768): CosineClsHead takes a flat feature
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='CosineClsHead',
        num_classes=1000,
        in_channels=768,
        dropout=0.1,
        loss=dict(type='AsymmetricGCLLoss', gamma_pos=0., gamma_neg=4.),
        ib_loss=dict(type='AsymmetricGCLLoss', gamma_pos=0.5, gamma_neg=8.),
        ib_loss_weight=0.5),
    # MMPretrain's Swin initialisation
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
    ],
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
)
