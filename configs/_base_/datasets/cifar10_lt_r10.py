# CIFAR-10-LT, imbalance ratio rho = 10 (20,431 training images); see
# cifar10_lt_r100.py.
_base_ = ['./cifar10_lt_r100.py']

imbalance_ratio = 10
train_dataloader = dict(dataset=dict(imbalance_ratio=imbalance_ratio))
val_dataloader = dict(dataset=dict(imbalance_ratio=imbalance_ratio))
test_dataloader = val_dataloader
