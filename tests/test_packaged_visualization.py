"""MMPretrain's packaged visualization tools on LPT configs and files, with
the compat fixes for today's matplotlib / scikit-learn
(lpt_mmpretrain/engine/compat/visualization.py)."""
import inspect

import pytest
from conftest import REPO_ROOT, run_python

from lpt_mmpretrain.engine.compat import mmpretrain_tool_path
from lpt_mmpretrain.engine.compat import visualization as vis

CONFIG = REPO_ROOT / 'configs' / 'lpt' / 'phase1_own_data_standin.py'


def test_fixes_applied_where_needed():
    import matplotlib
    import sklearn
    from packaging.version import Version
    applied = vis.install_tool_fixes()  # once per process, also via configs
    # the versions whose packaged tools fail without the fixes
    assert ('adjust_bbox_renderer' in applied) == (
        Version(matplotlib.__version__) >= Version('3.11'))
    assert ('tsne_n_iter' in applied) == (
        Version(sklearn.__version__) >= Version('1.7'))
    assert not vis.adjust_bbox_needs_renderer()
    from sklearn.manifold import TSNE
    model = TSNE(n_iter=260)
    params = model.get_params()  # the signature sklearn reads is intact
    key = 'max_iter' if 'max_iter' in params else 'n_iter'
    assert params[key] == 260
    assert 'perplexity' in inspect.signature(TSNE.__init__).parameters


@pytest.mark.slow
def test_browse_dataset(own_data_runs, tmp_path):
    run_python(
        mmpretrain_tool_path('visualization/browse_dataset'),
        CONFIG,
        '-o',
        tmp_path,
        '-n',
        '2',
        '-m',
        'original',
        env=own_data_runs.env)
    assert len(list(tmp_path.glob('*.*'))) == 2


@pytest.mark.slow
def test_vis_tsne_on_prompt_only_file(own_data_runs, tmp_path):
    run_python(
        mmpretrain_tool_path('visualization/vis_tsne'),
        CONFIG,
        '--checkpoint',
        own_data_runs.phase1_prompts,
        '--work-dir',
        tmp_path,
        '--max-num-samples',
        '30',
        '--n-iter',
        '250',
        '--perplexity',
        '5',
        env=own_data_runs.env)
    assert list(tmp_path.rglob('*.png'))
