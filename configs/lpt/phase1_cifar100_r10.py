# LPT phase 1 on CIFAR-100-LT (rho = 10):
# shared prompt + cosine head on a frozen ViT-B/16
# (IN-21k), trained with A-GCL on both sampling streams (docs/method.md).
_base_ = [
    '../_base_/models/lpt_vit_b16_in21k.py',
    '../_base_/datasets/cifar100_lt_r10.py',
    '../_base_/schedules/lpt_sgd_90e.py',
    '../_base_/default_runtime.py',
]

model = dict(head=dict(num_classes=100))
