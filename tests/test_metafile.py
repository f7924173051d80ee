"""configs/lpt/metafile.yml: MMPretrain's model-index format, every config."""
import re
from pathlib import Path

import pytest
import yaml
from conftest import on_meta
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[1]
METAFILE = ROOT / 'configs' / 'lpt' / 'metafile.yml'
README = ROOT / 'configs' / 'lpt' / 'README.md'


@pytest.fixture(scope='module')
def meta():
    with open(METAFILE) as f:
        return yaml.safe_load(f)


def models_by_config(meta):
    return {m['Config']: m for m in meta['Models']}


def test_structure(meta):
    collections = {c['Name']: c for c in meta['Collections']}
    assert 'LPT' in collections
    lpt = collections['LPT']
    assert lpt['Paper']['URL'] == 'https://arxiv.org/abs/2210.01033'
    assert (ROOT / lpt['README']).is_file()

    names = [m['Name'] for m in meta['Models']]
    assert len(names) == len(set(names)), 'model names must be unique'
    for model in meta['Models']:
        assert model['In Collection'] in collections, model['Name']
        assert (ROOT / model['Config']).is_file(), model['Config']
        # no weights are published by this project
        assert model['Weights'] is None, model['Name']
        metadata = model['Metadata']
        assert isinstance(metadata['Parameters'], int)
        assert 0 < metadata['Trainable Parameters'] < metadata['Parameters']
        assert metadata['Training Data']
        # every model names its task (mmpretrain.inference_model reads it);
        # `Metrics: {}` where no figure is known
        results = model['Results']
        assert results, model['Name']
        for result in results:
            assert set(result) == {'Task', 'Dataset', 'Metrics'}
            assert result['Task'] == 'Image Classification'
            assert result['Dataset'], model['Name']
            if not result['Metrics']:
                continue
            # published / reproduced figures always say where they come from
            assert model['Results Source'], model['Name']
            assert 'Top 1 Accuracy' in result['Metrics']
            for value in result['Metrics'].values():
                assert 0 <= value <= 100


def test_every_phase_config_listed(meta):
    listed = set(models_by_config(meta))
    # the own-data templates (docs/own_data.md) are not models: no data set
    # of their own, no results
    configs = {
        str(p.relative_to(ROOT))
        for p in (ROOT / 'configs' / 'lpt').glob('phase*.py')
        if '_own_data_' not in p.name
    }
    assert configs, 'no phase configs found'
    assert configs - listed == set(), 'configs missing from metafile.yml'
    assert listed - configs == set(), 'metafile.yml lists unknown configs'


def test_model_index_library_accepts_it():
    modelindex = pytest.importorskip('modelindex')
    errors = modelindex.load(str(METAFILE)).check(silent=True)
    # modelindex resolves README against the metafile's folder; MMPretrain's
    # metafiles (and ours) name it from the repository root, checked above.
    errors = [e for e in errors if 'Path to README file' not in e]
    assert errors == []


@pytest.mark.parametrize('config', [
    'configs/lpt/phase1_digits.py', 'configs/lpt/phase2_digits.py',
    'configs/lpt/phase2_places.py'
])
def test_parameter_counts(meta, config):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import lpt_mmpretrain  # noqa: F401

    init_default_scope('mmpretrain')
    cfg = Config.fromfile(str(ROOT / config))
    model_cfg = cfg.model.to_dict()
    if model_cfg['type'] == 'LPTClassifier':
        model_cfg.update(phase1_checkpoint=None, allow_no_phase1=True)
    with on_meta():  # counts need no weights
        model = MODELS.build(model_cfg)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    metadata = models_by_config(meta)[config]['Metadata']
    assert metadata['Parameters'] == total
    assert metadata['Trainable Parameters'] == trainable


def test_published_places_figures(meta):
    results = models_by_config(meta)['configs/lpt/phase2_places.py']
    metrics = results['Results'][0]['Metrics']
    assert results['Results'][0]['Dataset'] == 'Places-LT'
    assert metrics == {
        'Top 1 Accuracy': 50.07,
        'Many-shot Top 1 Accuracy': 49.27,
        'Medium-shot Top 1 Accuracy': 52.31,
        'Few-shot Top 1 Accuracy': 46.88
    }
    assert 'not reproduced' in results['Results Source']


def test_digits_results_match_readme(meta):
    """The DigitPairsLT figures of the metafile are the README's table."""
    text = README.read_text()
    for phase in ('1', '2'):
        config = f'configs/lpt/phase{phase}_digit_pairs.py'
        model = models_by_config(meta)[config]
        metrics = model['Results'][0]['Metrics']
        row = next(line for line in text.splitlines()
                   if line.startswith('|') and f'LPT phase {phase}' in line)
        numbers = [float(x) for x in re.findall(r'\b\d+\.\d\d\b', row)]
        assert numbers == [
            metrics['Top 1 Accuracy'], metrics['Many-shot Top 1 Accuracy'],
            metrics['Medium-shot Top 1 Accuracy'],
            metrics['Few-shot Top 1 Accuracy']
        ], row
