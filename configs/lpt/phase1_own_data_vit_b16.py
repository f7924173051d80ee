# LPT phase 1 on your own images (a folder per class, MMPretrain's
# CustomDataset) with ViT-B/16 pretrained on ImageNet-21k:
#   LPT_DATA_ROOT=/path/to/data LPT_NUM_CLASSES=N \
#       python tools/train.py configs/lpt/phase1_own_data_vit_b16.py
# N is the number of class folders; a head whose num_classes differs from
# the data's classes stops before training with both numbers
# (ClassCountsHook). Layout, thresholds: docs/own_data.md.
_base_ = [
    '../_base_/models/lpt_vit_b16_in21k.py',
    '../_base_/datasets/own_data.py',
    '../_base_/schedules/lpt_sgd_90e.py',
    '../_base_/default_runtime.py',
]

model = dict(head=dict(num_classes={{'$LPT_NUM_CLASSES:10'}}))
