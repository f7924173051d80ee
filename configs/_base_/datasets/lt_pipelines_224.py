# The spec's augmentation for 224-px ViTs: RandomResizedCrop(224) + horizontal
# flip for training; resize to 256 x 256 then center crop 224 for testing.
# Images that data sets load from files start with LoadImageFromFile; CIFAR
# keeps its images in memory and uses the *_array pipelines.
train_transforms = [
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_transforms = [
    dict(type='Resize', scale=(256, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_pipeline = [dict(type='LoadImageFromFile')] + train_transforms
test_pipeline = [dict(type='LoadImageFromFile')] + test_transforms
