# LPT phase 1 on iNaturalist 2018:
# shared prompt + cosine head on a frozen ViT-B/16
# (IN-21k), trained with A-GCL on both sampling streams (docs/method.md).
_base_ = [
    '../_base_/models/lpt_vit_b16_in21k.py',
    '../_base_/datasets/inat2018.py',
    '../_base_/schedules/lpt_sgd_90e.py',
    '../_base_/default_runtime.py',
]

model = dict(head=dict(num_classes=8142))

# An iNat epoch is ~1,709 iterations on 8 GPUs (13,672 on one): besides the
# epoch checkpoints (CheckpointHook, newest 3), PreemptionCheckpointHook
# writes iter_N.pth every 1,000 iterations and keeps only the newest one; the
# two hooks keep separate lists (docs/data_loading.md, "Checkpoints").
default_hooks = dict(preemption=dict(interval=1000, max_keep_ckpts=1))
