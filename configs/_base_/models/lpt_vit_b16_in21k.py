# LPT phase-1 model: frozen ViT-B/16 pretrained on ImageNet-21k with deep
# shared prompts (10 tokens per block) and a cosine classifier trained with
# the asymmetric GCL loss on both sampling streams.
#
# The backbone checkpoint is timm's `vit_base_patch16_224.augreg_in21k`
# converted with tools/model_converters/timm_to_mmpretrain.py (MMPretrain has
# no ImageNet-21k-only ViT-B/16); see the README.
model = dict(
    type='LPTClassifier',  # phase 1: no neck
    backbone=dict(
        type='LPTVisionTransformer',
        arch='b',
        img_size=224,
        patch_size=16,
        prompt_length=10,
        # The released code builds LN with eps 1e-5; the checkpoint was
        # trained with 1e-6. dict(type='LN', eps=1e-5) reproduces the code.
        norm_cfg=dict(type='LN', eps=1e-6),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrained/vit-base-p16_in21k-augreg.pth')),
    head=dict(
        type='CosineClsHead',
        num_classes=1000,
        in_channels=768,
        dropout=0.1,
        # class-balanced stream
        loss=dict(type='AsymmetricGCLLoss', gamma_pos=0., gamma_neg=4.),
        # instance-balanced stream, weighted max(0, 0.5 * (E - e) / E)
        ib_loss=dict(type='AsymmetricGCLLoss', gamma_pos=0.5, gamma_neg=8.),
        ib_loss_weight=0.5),
    data_preprocessor=dict(
        mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], to_rgb=True),
)
