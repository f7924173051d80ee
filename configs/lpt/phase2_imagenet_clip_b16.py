# LPT phase 2 on ImageNet-LT with CLIP ViT-B/16: group-specific prompt pool
# on top of the phase-1 shared prompt, loaded from the phase-1 work dir and
# frozen.
_base_ = [
    '../_base_/models/lpt_clip_vit_b16_phase2.py',
    '../_base_/datasets/imagenet_lt.py',
    '../_base_/schedules/lpt_sgd_90e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    head=dict(num_classes=1000),
    # a phase-1 checkpoint file, or a work dir (its last_checkpoint is used)
    phase1_checkpoint='work_dirs/phase1_imagenet_clip_b16')
