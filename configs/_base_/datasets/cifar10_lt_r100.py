# CIFAR-10-LT, imbalance ratio rho = 100 (12,406 training images: class i
# keeps int(5000 * 0.01 ** (i / 9)), the LDAM-DRW recipe) and the balanced
# 10,000-image test set. `data_root` holds the standard
# `cifar-10-batches-py/` folder (see README); nothing is downloaded.
# The CIFAR family's dataloaders (cifar100_lt_r100.py) on CIFAR-10.
_base_ = ['./cifar100_lt_r100.py']

dataset_type = 'CIFAR10LT'
data_root = 'data/cifar10/'
num_classes = 10
imbalance_ratio = 100

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        imbalance_ratio=imbalance_ratio))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        imbalance_ratio=imbalance_ratio))
test_dataloader = val_dataloader
# Shot groups by training count: many > 100, medium 20..100, few < 20. With
# rho = 100 every class has 50 or more images (5,000 .. 50): no few-shot
# class: LongTailAccuracy leaves `few` out of the results.
