# LPT phase 1 on your own images, sized for a CPU: the tiny ViT stand-in of
# phase1_digits.py (32 px images) on MMPretrain's CustomDataset, a folder
# per class. Try it on DigitsLT exported as files:
#   python tools/dataset_converters/digits_to_folders.py data/my_digits
#   LPT_DATA_ROOT=data/my_digits \
#       python tools/train.py configs/lpt/phase1_own_data_standin.py
# LPT_NUM_CLASSES (default 10) must be the number of class folders; a
# mismatch stops before training, naming both numbers. docs/own_data.md.
_base_ = ['./phase1_digits.py']

data_root = '{{$LPT_DATA_ROOT:data/my_digits}}'
img_size = 32
pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackInputs'),
]
model = dict(head=dict(num_classes={{'$LPT_NUM_CLASSES:10'}}))

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        data_prefix='train',
        pipeline=pipeline))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        data_prefix='val',
        pipeline=pipeline))
test_dataloader = val_dataloader
# Thresholds for the 340 training images of the exported digits (84 .. 8
# per class): many > 60, few < 25 (2 / 3 / 5 classes). Yours:
# tools/analysis_tools/class_distribution.py CONFIG suggests some.
val_evaluator = dict(
    type='LongTailAccuracy', many_shot_thr=60, few_shot_thr=25)
test_evaluator = val_evaluator
