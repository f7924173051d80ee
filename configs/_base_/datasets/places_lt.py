# Places-LT: 365 classes, 62,500 training, 7,300 validation and 36,500 test
# images listed in split files (`relative/path label`), like ImageNet-LT.
# Layout (see README): data/places365/Places_LT_{train,val,test}.txt and the
# images they list. LPT reports the test split.
_base_ = ['./imagenet_lt.py']

dataset_type = 'PlacesLT'
data_root = 'data/places365/'
num_classes = 365

train_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root,
        ann_file='Places_LT_train.txt'))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='Places_LT_val.txt',
        train_ann_file='Places_LT_train.txt'))
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='Places_LT_test.txt',
        train_ann_file='Places_LT_train.txt'))
