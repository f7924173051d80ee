# LPT phase 2 on CIFAR-100-LT (rho = 100):
# group-specific prompt pool on top of the phase-1
# shared prompt, which is loaded from the phase-1 work dir and frozen.
_base_ = [
    '../_base_/models/lpt_vit_b16_in21k_phase2.py',
    '../_base_/datasets/cifar100_lt_r100.py',
    '../_base_/schedules/lpt_sgd_90e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    head=dict(num_classes=100),
    # a phase-1 checkpoint file, or a work dir (its last_checkpoint is used)
    phase1_checkpoint='work_dirs/phase1_cifar100_r100')
