# LPT phase 1 on Places-LT with a frozen ViT-S/16 pretrained on ImageNet-21k
# (384 wide, 12 blocks, 6 heads): the same method as phase1_places.py on a
# smaller backbone.
#
# Arch: MMPretrain's 'small' is NOT this ViT-S: it is a 768-wide, 8-block
# model (an early timm definition). The ViT-S/16 of later work (timm's
# `vit_small_patch16_224`, whose IN-21k weights are
# `vit_small_patch16_224.augreg_in21k`) has DeiT-S's shape, which MMPretrain
# names 'deit-small'. Convert the timm weights with
# tools/model_converters/timm_to_mmpretrain.py (or point `checkpoint` at the
# timm file: LPTVisionTransformer converts timm checkpoints when loading).
_base_ = ['./phase1_places.py']

model = dict(
    backbone=dict(
        arch='deit-small',
        init_cfg=dict(checkpoint='pretrained/vit-small-p16_in21k-augreg.pth')),
    head=dict(in_channels=384))
