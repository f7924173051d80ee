"""The likely fixes for a checkpoint that does not fit: one table.

The backbone's check (:mod:`.pretrained`) and the classifier's
(:mod:`.classifier`) pick a row by name and fill in its fields.
"""
__all__ = ['HINTS', 'hint']

HINTS = {
    # the pretrained ViT of the backbone
    'not_vit': 'Likely fix: this is not a ViT checkpoint (MMPretrain '
    'VisionTransformer, LPT or timm ViT layout), or init_cfg prefix is wrong.',
    'prompt_length': 'Likely fix: the model has prompt_length={prompt_length};'
    " set prompt_length and arch to the checkpoint's.",
    'pos_embed': 'Likely fix: the arch (embed_dims) must match the checkpoint '
    '({problem}); a ViT pos_embed is (1, 1 + h * w, C) with a square grid.',
    'patch_embed': 'Likely fix: patch size / in_channels: the checkpoint uses '
    'patch_size={patch_size}, in_channels={in_channels}.',
    'arch_options': "Likely fix: match the checkpoint's architecture options "
    '(layer_scale_init_value for *gamma*, pre_norm=True for pre_norm.*, arch '
    'num_layers for extra layers).',
    'num_layers': 'Likely fix: wrong arch: the checkpoint has {checkpoint} '
    'layers, the model {model}.',
    'qkv_bias': 'Likely fix: the checkpoint has no qkv bias: set '
    'qkv_bias=False.',
    'layer_scale': 'Likely fix: the checkpoint has no layer scale: set '
    'layer_scale_init_value=0.',
    'pre_norm': 'Likely fix: the checkpoint has no pre-norm: set '
    'pre_norm=False.',
    'final_norm': 'Likely fix: the checkpoint has no final norm on the tokens '
    '(e.g. a timm average-pooling ViT); LPT needs a CLS-token ViT.',
    'vit_arch': 'Likely fix: wrong arch (embed_dims / feedforward_channels / '
    'num_heads) for this checkpoint, or not a ViT checkpoint.',
    # the trained tensors of the classifier
    'phase2_file': 'It is a phase-2 checkpoint (it has a prompt pool) but the '
    'model is a phase-1 one: use the phase-2 config.',
    'phase1_file': 'It is a phase-1 checkpoint (no prompt pool): test it with '
    'the phase-1 config; phase 2 starts from it through '
    '`model.phase1_checkpoint`.',
    'neck': 'Likely fix: the neck (pool_size, prompt_length) and share_blocks '
    "must match the checkpoint's config.",
    'not_lpt': 'It is not an LPT checkpoint (no shared prompt, which phase 1 '
    'trains); a plain pretrained ViT goes into model.backbone.init_cfg '
    'instead.',
    'prompt_shape': 'Likely fix: prompt_length x embed_dims of the backbone '
    "must match the checkpoint's.",
    'num_classes': 'The checkpoint was trained for {checkpoint} classes, the '
    'model has {model}: set model.head.num_classes (and the data set) to the '
    "checkpoint's.",
    'head': 'Likely fix: num_classes / in_channels of the head must match the '
    "checkpoint's.",
    'not_phase1': 'It is not an LPT phase-1 checkpoint for this model (phase 1'
    ' trains LPTVisionTransformer.prompt and the head).',
    'config': 'Likely fix: use the config the checkpoint was trained with.',
}


def hint(name: str, **fields) -> str:
    """The row ``name`` of :data:`HINTS` with its fields filled in."""
    return HINTS[name].format(**fields)
