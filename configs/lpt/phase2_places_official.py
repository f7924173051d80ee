# The released LPT Places-LT model (DongSky/LPT), converted with
# tools/model_converters/lpt_official_to_mmpretrain.py, evaluated as the
# released code does (docs/method.md, "The released Places-LT model"):
#   python tools/test.py configs/lpt/phase2_places_official.py \
#       pretrained/lpt_places_official.pth
# The official README reports 50.07 / 49.27 / 52.31 / 46.88 (overall, many,
# medium, few) on the Places-LT test split.
_base_ = ['./phase2_places.py']

# The converter's output: it holds the whole model, so it is both the
# backbone's pretrained checkpoint (read by a prompt-only load) and the
# phase-1 source (read only if one trains from this config).
official_checkpoint = 'pretrained/lpt_places_official.pth'

model = dict(
    backbone=dict(
        # the released code builds its LayerNorms with eps 1e-5
        norm_cfg=dict(type='LN', eps=1e-5),
        init_cfg=dict(type='Pretrained', checkpoint=official_checkpoint)),
    phase1_checkpoint=official_checkpoint)

# The released test transform: PIL decoding, torchvision's
# Resize((256, 256)) (PIL bilinear, antialiased) and CenterCrop(224);
# mean = std = 0.5 comes from the model's data_preprocessor.
released_test_pipeline = [
    dict(type='CheckedLoadImageFromFile', imdecode_backend='pillow'),
    dict(
        type='Resize',
        scale=(256, 256),
        backend='pillow',
        interpolation='bilinear'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=released_test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=released_test_pipeline))

# The official evaluation counts a class with exactly 20 training images as
# few-shot: many > 100, medium (20, 100], few <= 20.
val_evaluator = dict(
    type='LongTailAccuracy',
    many_shot_thr=100,
    few_shot_thr=20,
    few_inclusive=True)
test_evaluator = val_evaluator
