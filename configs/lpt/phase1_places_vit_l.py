# LPT phase 1 on Places-LT with a frozen ViT-L/16 pretrained on ImageNet-21k
# (1024 wide, 24 blocks, 16 heads; timm `vit_large_patch16_224.augreg_in21k`,
# converted with tools/model_converters/timm_to_mmpretrain.py). The shared
# prompt is 24 x 10 x 1024 (245,760 parameters).
_base_ = ['./phase1_places.py']

model = dict(
    backbone=dict(
        arch='large',
        init_cfg=dict(checkpoint='pretrained/vit-large-p16_in21k-augreg.pth')),
    head=dict(in_channels=1024))
