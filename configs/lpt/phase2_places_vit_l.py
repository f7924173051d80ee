# LPT phase 2 on Places-LT with ViT-L/16 (IN-21k). share_blocks scales with
# the depth: ViT-B shares 6 of 12 blocks, ViT-L 12 of 24, so the group
# prompts act on the second half of the network as in the paper. The pool is
# 20 x 12 x 10 x 1024 plus 20 keys of width 1024.
_base_ = ['./phase1_places_vit_l.py']

model = dict(
    # the paper's pool (PromptPoolNeck and LPTClassifier defaults: 20 x 10
    # tokens, top-2, matching weight 0.5, shared prefix)
    neck=dict(type='PromptPoolNeck'),
    share_blocks=12,
    phase1_checkpoint='work_dirs/phase1_places_vit_l')
