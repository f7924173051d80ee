# phase1_own_data_standin.py with the annotation-file layout of
# CustomDataset: $LPT_DATA_ROOT/meta/{train,val}.txt hold
# `relative/path.png label` lines (paths relative to the data root, labels
# 0-based), $LPT_DATA_ROOT/meta/classes.txt one class name per line in label
# order (digits_to_folders.py writes all three).
_base_ = ['./phase1_own_data_standin.py']

data_root = '{{$LPT_DATA_ROOT:data/my_digits}}'
train_dataloader = dict(
    dataset=dict(
        data_prefix='',
        ann_file='meta/train.txt',
        classes=data_root + '/meta/classes.txt'))
val_dataloader = dict(
    dataset=dict(
        data_prefix='',
        ann_file='meta/val.txt',
        classes=data_root + '/meta/classes.txt'))
test_dataloader = val_dataloader
