# LPT phase 2 on Places-LT with ViT-S/16 (IN-21k): the prompt pool over the
# last 6 of the 12 blocks, on top of phase1_places_vit_s.py's shared prompt
# (loaded from its work dir and frozen). The pool's width and depth follow
# the backbone (LPTClassifier builds PromptPoolNeck from it).
_base_ = ['./phase1_places_vit_s.py']

model = dict(
    # the paper's pool (PromptPoolNeck and LPTClassifier defaults: 20 x 10
    # tokens, top-2, matching weight 0.5, shared prefix)
    neck=dict(type='PromptPoolNeck'),
    # a phase-1 checkpoint file, or a work dir (its last_checkpoint is used)
    phase1_checkpoint='work_dirs/phase1_places_vit_s')
