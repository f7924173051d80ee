import copy
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import lpt_mmpretrain  # noqa: F401
from lpt_mmpretrain.apis.export import (build_model_from_checkpoint,
                                        export_onnx, onnx_multitask_scores,
                                        onnx_scores)
from lpt_mmpretrain.checkpoints import save_prompt_checkpoint

# The `deploy` extra (tools/install.sh installs it).
pytest.importorskip('onnxruntime', reason='needs the deploy extra')
pytest.importorskip('onnxscript', reason='needs the deploy extra')

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(ROOT, 'tools', 'deployment', 'pytorch2onnx.py')
ARCH = dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)


def model_cfg(backbone, phase):
    cfg = dict(
        type='LPTClassifier',  # phase 1: no neck
        backbone=dict(
            type='LPTVisionTransformer',
            arch=ARCH,
            img_size=32,
            patch_size=8,
            prompt_length=3,
            init_cfg=dict(type='Pretrained', checkpoint=backbone)),
        head=dict(type='CosineClsHead', num_classes=5, in_channels=32))
    if phase == 2:
        cfg.update(
            type='LPTClassifier',
            neck=dict(
                type='PromptPoolNeck', pool_size=6, prompt_length=4, top_k=2),
            share_blocks=2,
            phase1_checkpoint='does/not/exist.pth')
    return cfg


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """{phase: (config file, full checkpoint, prompt-only checkpoint)}."""
    tmp = tmp_path_factory.mktemp('onnx')
    torch.manual_seed(0)
    vit = MODELS.build(
        dict(
            type='LPTVisionTransformer',
            arch=ARCH,
            img_size=32,
            patch_size=8,
            prompt_length=0))
    backbone = str(tmp / 'vit.pth')
    torch.save(dict(state_dict=vit.state_dict()), backbone)
    files = {}
    for phase in (1, 2):
        cfg = model_cfg(backbone, phase)
        config = tmp / f'phase{phase}.py'
        Config(dict(model=cfg)).dump(str(config))
        build = copy.deepcopy(cfg)
        build.update(phase1_checkpoint=None, allow_no_phase1=True)
        if phase == 1:
            build.pop('phase1_checkpoint')
            build.pop('allow_no_phase1')
        torch.manual_seed(phase)
        model = MODELS.build(build)
        model.init_weights()
        with torch.no_grad():  # keys far apart: the top-k varies per image
            for key, param in model.named_parameters():
                if key in ('neck.key', 'backbone.prompt'):
                    param.normal_()
        full, prompts = tmp / f'p{phase}_full.pth', tmp / f'p{phase}_pr.pth'
        torch.save(dict(state_dict=model.state_dict(), meta={}), full)
        save_prompt_checkpoint(model, str(prompts), meta=dict(model=cfg))
        files[phase] = (str(config), str(full), str(prompts))
    return tmp, files


def predicted_scores(model, inputs):
    with torch.no_grad():
        return torch.stack([s.pred_score for s in model.predict(inputs)])


@pytest.mark.parametrize('phase,kind', [(1, 'prompt-only'), (2, 'full'),
                                        (2, 'prompt-only')])
def test_export_matches_onnxruntime(checkpoints, phase, kind):
    tmp, files = checkpoints
    config, full, prompts = files[phase]
    model = build_model_from_checkpoint(config,
                                        full if kind == 'full' else prompts)
    out = export_onnx(
        model, str(tmp / f'p{phase}_{kind}.onnx'), dynamic_batch=True)
    torch.manual_seed(10)
    for batch in (1, 4):
        inputs = torch.randn(batch, 3, 32, 32)
        expected = predicted_scores(model, inputs)
        torch.testing.assert_close(
            onnx_scores(out, inputs), expected, atol=1e-5, rtol=0)
    if phase == 2:
        # The graph holds the top-k selection, not one fixed entry.
        import onnx
        ops = {n.op_type for n in onnx.load(out).graph.node}
        assert 'TopK' in ops
        _, idx = model.neck.select(
            model.extract_feat(torch.randn(16, 3, 32, 32), stage='query'))
        assert len({tuple(sorted(i)) for i in idx.tolist()}) > 1


def test_full_and_prompt_only_give_the_same_model(checkpoints):
    _, files = checkpoints
    config, full, prompts = files[2]
    inputs = torch.randn(3, 3, 32, 32)
    torch.testing.assert_close(
        predicted_scores(build_model_from_checkpoint(config, full), inputs),
        predicted_scores(build_model_from_checkpoint(config, prompts), inputs))


@pytest.mark.slow  # the tool as a process
def test_pytorch2onnx_tool(checkpoints):
    tmp, files = checkpoints
    config, _, prompts = files[2]
    out = tmp / 'tool.onnx'
    proc = subprocess.run([
        sys.executable, TOOL, config, prompts, '--output-file',
        str(out), '--shape', '32', '32', '--dynamic-batch'
    ],
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'max abs difference of the scores' in proc.stdout
    assert out.is_file()


def test_pytorch2onnx_cfg_options(checkpoints, capsys):
    # A config that names another backbone path: --cfg-options points it at
    # the file instead of editing the config (as in every MMPretrain tool).
    from conftest import load_tool
    tmp, files = checkpoints
    config, _, prompts = files[1]
    cfg = Config.fromfile(config)
    backbone = cfg.model.backbone.init_cfg.checkpoint
    cfg.model.backbone.init_cfg.checkpoint = str(tmp / 'elsewhere/vit.pth')
    moved = str(tmp / 'moved_backbone.py')
    cfg.dump(moved)
    tool = load_tool('deployment/pytorch2onnx')
    out = str(tmp / 'cfg_options.onnx')
    with pytest.raises(FileNotFoundError, match='elsewhere'):
        tool.main([moved, prompts, '--output-file', out, '--no-verify'])
    tool.main([
        moved, prompts, '--output-file', out, '--cfg-options',
        f'model.backbone.init_cfg.checkpoint={backbone}',
        'model.head.pred_scale=5.'
    ])
    assert 'max abs difference of the scores' in capsys.readouterr().out
    model = build_model_from_checkpoint(
        moved,
        prompts,
        cfg_options={
            'model.backbone.init_cfg.checkpoint': backbone,
            'model.head.pred_scale': 5.
        })
    assert model.head.pred_scale == 5.
    inputs = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(
        onnx_scores(out, inputs),
        predicted_scores(model, inputs),
        atol=1e-5,
        rtol=0)


def test_multitask_export_matches_torch(checkpoints, capsys):
    # One graph, the task index an input: phase 1 and phase 2 tasks on one
    # backbone, each image's scores as its own model's. Through the tool,
    # which also compares ONNX Runtime with PyTorch.
    from conftest import load_tool
    tmp, files = checkpoints
    out = str(tmp / 'multitask.onnx')
    inferencer = load_tool('deployment/multitask2onnx').main([
        files[1][0], '--tasks', f'p2={files[2][2]}', f'p1={files[1][2]}',
        '--output-file', out
    ])
    assert 'max abs difference of the scores' in capsys.readouterr().out
    assert inferencer.task_names == ['p2', 'p1']
    torch.manual_seed(11)
    for task_ids in ([1, 0, 0, 1, 1], [0]):
        inputs = torch.randn(len(task_ids), 3, 32, 32)
        ids = torch.tensor(task_ids)
        scores, num_classes = onnx_multitask_scores(out, inputs, ids)
        names = [inferencer.task_names[i] for i in task_ids]
        expected = inferencer.predict(inputs, names)
        assert num_classes.tolist() == [5] * len(task_ids)
        for j, (name, sample) in enumerate(zip(names, expected)):
            torch.testing.assert_close(
                scores[j, :num_classes[j]],
                sample.pred_score,
                atol=1e-5,
                rtol=0)
            phase = 1 if name == 'p1' else 2
            own = build_model_from_checkpoint(files[phase][0], files[phase][2])
            torch.testing.assert_close(
                sample.pred_score,
                predicted_scores(own, inputs[j:j + 1])[0],
                atol=1e-5,
                rtol=0)
