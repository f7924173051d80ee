# The spec's augmentation for 224-px ViTs: RandomResizedCrop(224) + horizontal
# flip for training; resize to 256 x 256 then center crop 224 for testing.
# Resizing uses Pillow's bilinear filter, as the released code does through
# torchvision (it antialiases when downscaling; OpenCV's bilinear does not).
# The center crop is a plain crop with torchvision's offsets.
# Images that data sets load from files start with the image loader; CIFAR
# keeps its images in memory (BGR, like decoded files) and uses the
# *_transforms lists.
resize_cfg = dict(backend='pillow', interpolation='bilinear')
train_transforms = [
    dict(type='RandomResizedCrop', scale=224, **resize_cfg),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_transforms = [
    dict(type='Resize', scale=(256, 256), **resize_cfg),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_pipeline = [dict(type='CheckedLoadImageFromFile')] + train_transforms
test_pipeline = [dict(type='CheckedLoadImageFromFile')] + test_transforms
# Test-time augmentation (tools/test.py --tta): LIFT's five crops, the
# short edge resized to 224 + 24, then the center and four corner crops.
tta_transforms = [
    dict(type='ResizeEdge', scale=224 + 24, edge='short', **resize_cfg),
    dict(type='FiveCrop', crop_size=224),
]
tta_pipeline = [dict(type='CheckedLoadImageFromFile')] + tta_transforms
