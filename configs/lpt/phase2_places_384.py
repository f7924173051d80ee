# LPT phase 2 on Places-LT with the ViT-B/16 (IN-21k) at 384 x 384: prompt
# pool over the last 6 of the 12 blocks on top of phase1_places_384.py's
# shared prompt (same prompt shapes as at 224: prompts do not depend on the
# number of patches).
_base_ = ['./phase1_places_384.py']

model = dict(
    # the paper's pool (PromptPoolNeck and LPTClassifier defaults: 20 x 10
    # tokens, top-2, matching weight 0.5, shared prefix)
    neck=dict(type='PromptPoolNeck'),
    phase1_checkpoint='work_dirs/phase1_places_384')
