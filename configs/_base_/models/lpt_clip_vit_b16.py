# LPT phase-1 model on CLIP's ViT-B/16 image encoder: the IN-21k model's
# prompts, cosine head and losses, with CLIP's architecture and input
# statistics. The checkpoint is OpenAI's ViT-B-16 (or an open_clip one)
# converted with tools/model_converters/clip_to_mmpretrain.py; see
# docs/clip.md. The feature is ln_post on the CLS token (768-d, before CLIP's
# projection), as in LIFT.
_base_ = ['./lpt_vit_b16_in21k.py']

model = dict(
    backbone=dict(
        pre_norm=True,  # CLIP's ln_pre (and a patch embedding without bias)
        norm_cfg=dict(type='LN', eps=1e-5),
        # OpenAI's weights use QuickGELU; most open_clip ViT-B-16 weights
        # (LAION, DataComp) use dict(type='GELU'): see docs/clip.md.
        layer_cfgs=dict(act_cfg=dict(type='mmpretrain.QuickGELU')),
        init_cfg=dict(checkpoint='pretrained/clip-vit-base-p16_openai.pth')),
    # CLIP's mean and std (0.48145466, 0.4578275, 0.40821073) and
    # (0.26862954, 0.26130258, 0.27577711), times 255.
    data_preprocessor=dict(
        mean=[122.7709383, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        to_rgb=True),
)
