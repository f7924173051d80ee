# LPT phase 1 on ImageNet-LT with a frozen CLIP ViT-B/16 image encoder (OpenAI
# weights converted with tools/model_converters/clip_to_mmpretrain.py, see
# docs/clip.md): shared prompt + cosine head, A-GCL on both streams.
_base_ = [
    '../_base_/models/lpt_clip_vit_b16.py',
    '../_base_/datasets/imagenet_lt.py',
    '../_base_/schedules/lpt_sgd_90e.py',
    '../_base_/default_runtime.py',
]

model = dict(head=dict(num_classes=1000))
