# LPT phase 2 on Places-LT with DeiT-B/16 (IN-1k): prompt pool over the last
# 6 of the 12 blocks on top of phase1_places_deit_b.py's shared prompt.
_base_ = ['./phase1_places_deit_b.py']

model = dict(
    # the paper's pool (PromptPoolNeck and LPTClassifier defaults: 20 x 10
    # tokens, top-2, matching weight 0.5, shared prefix)
    neck=dict(type='PromptPoolNeck'),
    phase1_checkpoint='work_dirs/phase1_places_deit_b')
