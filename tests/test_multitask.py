import copy

import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS

import lpt_mmpretrain  # noqa: F401
from lpt_mmpretrain.apis import MultiTaskInferencer
from lpt_mmpretrain.checkpoints import (backbone_fingerprint,
                                        save_prompt_checkpoint)

ARCH = dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)
PREPROCESSOR = dict(
    type='ClsDataPreprocessor',
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    to_rgb=True)


def backbone_cfg(checkpoint, prompt_length):
    return dict(
        type='LPTVisionTransformer',
        arch=ARCH,
        img_size=32,
        patch_size=8,
        prompt_length=prompt_length,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint))


def model_cfg(checkpoint,
              prompt_length,
              num_classes,
              pool=None,
              model_type='LPTClassifier'):
    cfg = dict(
        type=model_type,
        backbone=backbone_cfg(checkpoint, prompt_length),
        head=dict(
            type='CosineClsHead', num_classes=num_classes, in_channels=32),
        data_preprocessor=PREPROCESSOR)
    if pool is not None:
        share_blocks, pool_size, length, top_k = pool
        cfg.update(
            type='LPTClassifier',
            neck=dict(
                type='PromptPoolNeck',
                pool_size=pool_size,
                prompt_length=length,
                top_k=top_k),
            share_blocks=share_blocks,
            allow_no_phase1=True)
    return cfg


def save_backbone(path, seed):
    torch.manual_seed(seed)
    bb = MODELS.build(
        dict(
            type='LPTVisionTransformer',
            arch=ARCH,
            img_size=32,
            patch_size=8,
            prompt_length=0))
    torch.save(dict(state_dict=bb.state_dict()), path)
    return str(path)


def build_task(tmp_path, name, backbone, seed, **kwargs):
    """A random LPT model on `backbone` and its prompt-only file."""
    cfg = model_cfg(backbone, **kwargs)
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    with torch.no_grad():  # spread the keys so that samples pick different
        for key, param in model.named_parameters():
            if key.startswith('neck.key') or key == 'backbone.prompt':
                param.normal_(std=1.)
    model.eval()
    classes = [f'{name}_{i}' for i in range(cfg['head']['num_classes'])]
    filename = str(tmp_path / f'{name}_prompts.pth')
    save_prompt_checkpoint(
        model, filename, meta=dict(model=cfg, classes=classes))
    return model, filename


TASKS = dict(
    p1_short=dict(prompt_length=3, num_classes=5),  # phase 1: no neck
    # MMPretrain's own classifier on the LPT backbone serves as well
    p1_plain=dict(
        prompt_length=3, num_classes=2, model_type='ImageClassifier'),
    p1_long=dict(prompt_length=5, num_classes=3),
    # (share_blocks, pool_size, group prompt length, top_k)
    p2_a=dict(prompt_length=5, num_classes=4, pool=(2, 6, 4, 2)),
    p2_b=dict(prompt_length=3, num_classes=7, pool=(1, 4, 2, 1)),
)


@pytest.fixture(scope='module')
def served(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('multitask')
    backbone = save_backbone(tmp_path / 'vit.pth', seed=0)
    models, files = {}, {}
    for seed, (name, kwargs) in enumerate(TASKS.items()):
        models[name], files[name] = build_task(tmp_path, name, backbone,
                                               seed + 1, **kwargs)
    bb = MODELS.build(backbone_cfg(backbone, prompt_length=0))
    bb.init_weights()
    return tmp_path, backbone, bb, models, files


def own_scores(models, inputs, tasks):
    scores = []
    for j, name in enumerate(tasks):
        with torch.no_grad():
            scores.append(models[name].predict(inputs[j:j + 1])[0].pred_score)
    return scores


@pytest.mark.parametrize(
    'tasks',
    [
        [
            'p1_short', 'p2_a', 'p1_long', 'p2_b', 'p2_a', 'p1_short', 'p2_b',
            'p1_plain'
        ],
        ['p2_a', 'p2_a', 'p2_a'],  # one task: no padding, MMPretrain's layers
        ['p1_long', 'p1_short'],
    ])
def test_mixed_batch_equals_own_models(served, tasks):
    _, _, bb, models, files = served
    inferencer = MultiTaskInferencer(bb, files)
    torch.manual_seed(123)
    inputs = torch.randn(len(tasks), 3, 32, 32)
    preds = inferencer.predict(inputs, tasks)
    expected = own_scores(models, inputs, tasks)
    for name, pred, want in zip(tasks, preds, expected):
        assert pred.task == name
        assert pred.pred_score.shape == want.shape
        torch.testing.assert_close(pred.pred_score, want, atol=1e-5, rtol=0)
    # Different tasks give different features for the same image.
    same = torch.randn(1, 3, 32, 32).expand(2, -1, -1, -1)
    feats = inferencer.extract_feat(same, ['p2_a', 'p2_b'])
    assert not torch.allclose(feats[0], feats[1])


def test_static_pass_equals_grouped_pass(served):
    # The export's pass (every sample one phase-2 pass from the first group
    # block, masked before its own share_blocks) gives the same scores.
    from lpt_mmpretrain.apis.multi_task_model import MultiTaskModel
    _, _, bb, _, files = served
    inferencer = MultiTaskInferencer(bb, files)
    static = MultiTaskModel(
        inferencer.model.backbone, inferencer.stack, static=True)
    tasks = ['p1_short', 'p2_a', 'p1_long', 'p2_b', 'p2_a', 'p1_plain']
    torch.manual_seed(4)
    inputs = torch.randn(len(tasks), 3, 32, 32)
    idx = inferencer.task_index(tasks)
    with torch.no_grad():
        torch.testing.assert_close(
            static(inputs, idx),
            inferencer.model(inputs, idx),
            atol=1e-5,
            rtol=0)


def test_phase2_samples_pick_different_entries(served):
    # The test above means something only if the selection varies.
    _, _, _, models, _ = served
    model = models['p2_a']
    torch.manual_seed(5)
    with torch.no_grad():
        query = model.extract_feat(torch.randn(16, 3, 32, 32), stage='query')
        _, idx = model.neck.select(query)
    assert len({tuple(sorted(i)) for i in idx.tolist()}) > 1


def test_results_like_mmpretrain_inferencer(served):
    _, _, bb, models, files = served
    inferencer = MultiTaskInferencer(bb, files)
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 256, (40, 36, 3), dtype=np.uint8) for _ in range(3)
    ]
    results = inferencer(images, ['p2_b', 'p1_short', 'p2_b'], batch_size=2)
    assert [r['task'] for r in results] == ['p2_b', 'p1_short', 'p2_b']
    for r in results:
        assert r['pred_scores'].shape == (TASKS[r['task']]['num_classes'], )
        assert r['pred_label'] == int(r['pred_scores'].argmax())
        assert r['pred_score'] == pytest.approx(r['pred_scores'].max())
        assert r['pred_class'] == f'{r["task"]}_{r["pred_label"]}'
    assert inferencer.classes('p1_short') == tuple(f'p1_short_{i}'
                                                   for i in range(5))
    # One task name for all images.
    assert {r['task']
            for r in inferencer(images[:2], 'p1_long')} == {'p1_long'}


def test_add_remove_tasks_keeps_backbone(served):
    _, _, bb, _, files = served
    inferencer = MultiTaskInferencer(bb, {'p1_short': files['p1_short']})
    backbone = inferencer.backbone
    inferencer.add_task('p2_a', files['p2_a'])
    assert inferencer.task_names == ['p1_short', 'p2_a']
    inferencer.remove_task('p1_short')
    assert inferencer.task_names == ['p2_a']
    assert inferencer.backbone is backbone
    with pytest.raises(KeyError, match='p1_short'):
        inferencer.predict(torch.randn(1, 3, 32, 32), ['p1_short'])
    with pytest.raises(ValueError, match='exists already'):
        inferencer.add_task('p2_a', files['p2_a'])
    with pytest.raises(ValueError, match='2 images but 1 task'):
        inferencer.predict(torch.randn(2, 3, 32, 32), ['p2_a'])


def test_task_views_share_one_template(served):
    """Tasks of one backbone config are views of one module built once:
    each view holds its own prompt and runs its own load hook."""
    from lpt_mmpretrain.apis import shared_backbone
    _, _, bb, _, files = served
    inferencer = MultiTaskInferencer(bb)
    inferencer.add_task('p2_a', files['p2_a'])
    inferencer.add_task('p2_a_again', files['p2_a'])
    inferencer.add_task('p2_b', files['p2_b'])
    templates = shared_backbone._TEMPLATES[inferencer.backbone]
    assert len(templates) == 2  # two prompt lengths (5, 3), two configs
    a = inferencer.task_model('p2_a').backbone
    b = inferencer.task_model('p2_a_again').backbone
    assert a.prompt is not b.prompt and torch.equal(a.prompt, b.prompt)
    assert a.layers is b.layers is inferencer.backbone.layers
    template = next(t for t in templates.values()
                    if t.prompt.shape == a.prompt.shape)
    assert template.prompt.is_meta  # loading went into the views only
    hooks = [h.hook for h in a._load_state_dict_pre_hooks.values()]
    assert [h.__self__ for h in hooks] == [a]  # the view's own hook


def test_restacked_after_remove_and_add(served):
    # The stack is rebuilt: indices and padding follow the tasks left.
    _, _, bb, models, files = served
    inferencer = MultiTaskInferencer(bb, files)
    inferencer.remove_task('p1_long')  # the longest shared prompt
    inferencer.remove_task('p2_a')  # the largest pool and share_blocks
    inferencer.add_task('p2_a_again', files['p2_a'])
    models = dict(models, p2_a_again=models['p2_a'])
    tasks = ['p2_a_again', 'p1_short', 'p2_b', 'p1_plain', 'p2_a_again']
    torch.manual_seed(7)
    inputs = torch.randn(len(tasks), 3, 32, 32)
    for pred, want in zip(
            inferencer.predict(inputs, tasks),
            own_scores(models, inputs, tasks)):
        torch.testing.assert_close(pred.pred_score, want, atol=1e-5, rtol=0)
    # A task as its own model on the shared backbone: the normal forward.
    own = inferencer.task_model('p2_a_again')
    assert own.backbone.layers[0] is inferencer.backbone.layers[0]
    with torch.no_grad():
        torch.testing.assert_close(
            own.predict(inputs)[0].pred_score,
            models['p2_a'].predict(inputs)[0].pred_score)


@pytest.mark.parametrize('form', [
    'config file', 'full checkpoint', 'pretrained file', 'module with prompt'
])
def test_backbone_forms(served, form):
    tmp_path, backbone, _, models, files = served
    if form == 'config file':
        from mmengine.config import Config
        arg = str(tmp_path / 'config.py')
        Config(dict(model=model_cfg(backbone, 3, 5))).dump(arg)
    elif form == 'full checkpoint':  # its backbone weights; arch: the task's
        arg = str(tmp_path / 'full_p2_a.pth')
        torch.save(dict(state_dict=models['p2_a'].state_dict(), meta={}), arg)
    elif form == 'pretrained file':
        arg = backbone
    else:  # a loaded LPT backbone with its own prompt, which is not used
        arg = MODELS.build(backbone_cfg(backbone, prompt_length=4))
        arg.init_weights()
    inferencer = MultiTaskInferencer(arg, files)
    tasks = ['p1_long', 'p2_a', 'p2_b']
    torch.manual_seed(3)
    inputs = torch.randn(3, 3, 32, 32)
    for pred, want in zip(
            inferencer.predict(inputs, tasks),
            own_scores(models, inputs, tasks)):
        torch.testing.assert_close(pred.pred_score, want, atol=1e-5, rtol=0)


def test_backbone_forms_refused(served):
    tmp_path, backbone, _, _, files = served
    with pytest.raises(ValueError, match='LPT model name'):
        MultiTaskInferencer('no_such_model_or_file')
    with pytest.raises(ValueError, match='prompt-only file'):
        MultiTaskInferencer(files['p2_a'])
    with pytest.raises(ValueError, match='architecture is unknown'):
        MultiTaskInferencer(backbone)  # no config and no task to tell it
    with pytest.raises(TypeError, match='LPT model name'):
        MultiTaskInferencer(torch.nn.Linear(2, 2))


def test_model_name_backbone():
    # A model of the index: its config's backbone, pretrained weights loaded
    # (the DigitsLT models' shipped stand-in ViT).
    from mmpretrain import list_models
    from mmpretrain.apis import ModelHub
    name = 'lpt_vit-tiny-p8_digits-pre_digits-lt-phase2'
    assert name in list_models('lpt*')
    inferencer = MultiTaskInferencer(name)
    direct = MODELS.build(ModelHub.get(name).config.model.backbone)
    direct.init_weights()
    assert inferencer.fingerprint == backbone_fingerprint(direct)


def test_other_backbone_refused(served):
    tmp_path, _, bb, _, _ = served
    other = save_backbone(tmp_path / 'other_vit.pth', seed=7)
    _, filename = build_task(tmp_path, 'foreign', other, 3,
                             **TASKS['p1_short'])
    inferencer = MultiTaskInferencer(bb)
    with pytest.raises(ValueError) as err:
        inferencer.add_task('foreign', filename)
    other_bb = MODELS.build(backbone_cfg(other, prompt_length=0))
    other_bb.init_weights()
    message = str(err.value)
    assert backbone_fingerprint(other_bb) in message
    assert inferencer.fingerprint in message
    assert 'other_vit.pth' in message


def test_full_checkpoint_refused(served):
    tmp_path, _, bb, models, _ = served
    full = tmp_path / 'full.pth'
    torch.save(dict(state_dict=models['p1_short'].state_dict(), meta={}), full)
    with pytest.raises(ValueError, match='not a prompt-only'):
        MultiTaskInferencer(bb, {'x': str(full)})
