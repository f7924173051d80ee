# LPT phase 2 on your own images (see phase1_own_data_vit_b16.py), starting
# from phase 1's work dir:
#   LPT_DATA_ROOT=/path/to/data LPT_NUM_CLASSES=N \
#       python tools/train.py configs/lpt/phase2_own_data_vit_b16.py
_base_ = [
    '../_base_/models/lpt_vit_b16_in21k_phase2.py',
    '../_base_/datasets/own_data.py',
    '../_base_/schedules/lpt_sgd_90e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    head=dict(num_classes={{'$LPT_NUM_CLASSES:10'}}),
    # a phase-1 checkpoint file, or a work dir (its last_checkpoint is used)
    phase1_checkpoint='work_dirs/phase1_own_data_vit_b16')
