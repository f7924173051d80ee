"""lpt_mmpretrain/checkpoints: the floor under the models imports nothing
above it, writes the fingerprint once, reads older files, and every message
it names exists with the fields given."""
import ast
import string
from pathlib import Path

import torch
from mmpretrain.registry import MODELS
from test_prompt_only_loading import model_cfg, save_vit  # noqa: E402

import lpt_mmpretrain  # noqa: F401
from lpt_mmpretrain.checkpoints import (FINGERPRINT_KEY, MESSAGES, SOURCE_KEY,
                                        backbone_fingerprint, encode_text,
                                        recorded_fingerprint, recorded_source,
                                        save_prompt_checkpoint)

PACKAGE = Path(lpt_mmpretrain.__file__).parent
FLOOR = PACKAGE / 'checkpoints'
# What the floor may import from the package: itself.
ALLOWED = ('lpt_mmpretrain.checkpoints', )


def _imports(path: Path):
    module = '.'.join(path.relative_to(PACKAGE.parent).with_suffix('').parts)
    package = module if path.name == '__init__.py' else \
        module.rpartition('.')[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) -
                                          node.level + 1]
                yield '.'.join(base + ([node.module] if node.module else []))
            else:
                yield node.module or ''
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_the_floor_imports_nothing_above_it():
    upward = [
        (path.name, name) for path in FLOOR.rglob('*.py')
        for name in _imports(path)
        if name.startswith('lpt_mmpretrain') and not name.startswith(ALLOWED)
    ]
    assert upward == []


def _message_calls():
    for path in PACKAGE.rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call)
                    and getattr(node.func, 'id', None) == 'message'
                    and node.args and isinstance(node.args[0], ast.Constant)):
                yield path.name, node.args[0].value, {
                    kw.arg
                    for kw in node.keywords
                }


def test_every_message_named_exists_with_its_fields():
    calls = list(_message_calls())
    assert len(calls) > 20
    for where, row, given in calls:
        assert row in MESSAGES, (where, row)
        needed = {
            field
            for _, field, _, _ in string.Formatter().parse(MESSAGES[row])
            if field
        }
        assert needed == given, (where, row)


def test_fingerprint_written_once_and_read_from_older_files(tmp_path):
    vit = save_vit(tmp_path / 'vit.pth', seed=0)
    model = MODELS.build(model_cfg(vit, phase=1))
    model.init_weights()
    filename = tmp_path / 'p.pth'
    save_prompt_checkpoint(model, str(filename))
    ckpt = torch.load(filename, weights_only=True)
    fingerprint = backbone_fingerprint(model.backbone)
    assert recorded_fingerprint(ckpt) == fingerprint
    assert recorded_source(ckpt) == str(vit)
    assert fingerprint not in str(ckpt['meta'])  # once: in the state dict

    # files of the previous version also had it in meta; older ones only
    older = dict(
        state_dict={},
        meta=dict(backbone_fingerprint='ab', backbone_checkpoint='old.pth'))
    assert (recorded_fingerprint(older), recorded_source(older)) == ('ab',
                                                                     'old.pth')
    previous = dict(
        state_dict={
            f'backbone.{FINGERPRINT_KEY}': encode_text('cd'),
            f'backbone.{SOURCE_KEY}': encode_text('new.pth')
        },
        meta=older['meta'])
    assert (recorded_fingerprint(previous),
            recorded_source(previous)) == ('cd', 'new.pth')
    assert recorded_fingerprint(dict(state_dict={}, meta={})) is None
