# A non-prompt long-tail baseline: a fully trainable ResNet-50 with LPT's
# long-tail parts: cosine head, A-GCL on the class-balanced stream and on the
# (decaying) instance-balanced stream of DualClassBalancedSampler.
# Trained from scratch; to start from MMPretrain's ImageNet-1k weights add
#   backbone=dict(init_cfg=dict(type='Pretrained', prefix='backbone.',
#       checkpoint='https://download.openmmlab.com/mmclassification/v0/'
#                  'resnet/resnet50_8xb32_in1k_20210831-ea4938fc.pth'))
# (check that the pretraining data does not overlap your test classes).
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch'),
    # (B, 2048, h, w) -> (B, 2048): CosineClsHead takes a flat feature
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='CosineClsHead',
        num_classes=1000,
        in_channels=2048,
        dropout=0.1,
        # class-balanced stream
        loss=dict(type='AsymmetricGCLLoss', gamma_pos=0., gamma_neg=4.),
        # instance-balanced stream, weighted max(0, 0.5 * (E - e) / E)
        ib_loss=dict(type='AsymmetricGCLLoss', gamma_pos=0.5, gamma_neg=8.),
        ib_loss_weight=0.5),
    # ImageNet statistics, the usual normalisation of CNNs
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
)
