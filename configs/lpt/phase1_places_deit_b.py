# LPT phase 1 on Places-LT with a frozen DeiT-B/16 (ImageNet-1k, MMPretrain's
# checkpoint: an ImageClassifier file whose `backbone.` keys are loaded).
# DeiT was trained on ImageNet statistics, not the (0.5, 0.5) of the IN-21k
# ViTs, so the data preprocessor follows it. ImageNet-1k pretraining shares
# classes with ImageNet-LT: prefer the IN-21k ViTs there.
_base_ = ['./phase1_places.py']

model = dict(
    backbone=dict(
        arch='deit-base',
        init_cfg=dict(
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'deit/deit-base_pt-16xb64_in1k_20220216-db63c16c.pth')),
    head=dict(in_channels=768),
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True))
