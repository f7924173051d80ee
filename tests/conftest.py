import os

# One BLAS/OpenMP thread per process: the distributed and tool tests start
# several processes on small machines, and oversubscribed threads slow them
# down by an order of magnitude. Set before torch is imported by the tests.
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('MKL_NUM_THREADS', '1')


# ---------------------------------------------------------------------------
# MMPretrain's own tools, as `mim train/test` runs them: the scripts packaged
# in mmpretrain/.mim/tools, started as subprocesses.
import glob  # noqa: E402
import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_packaged_tool(tool, *args, cwd=None, timeout=900, check=True):
    """Run ``mmpretrain/.mim/tools/<tool>`` (e.g. ``'test.py'`` or
    ``'analysis_tools/get_flops.py'``) with this Python; returns the
    ``CompletedProcess`` (stdout and stderr merged into ``stdout``). With
    ``check``, a non-zero exit fails the test with the output's tail."""
    from lpt_mmpretrain.engine.compat.mmpretrain_tools import \
        mmpretrain_tool_path
    script = mmpretrain_tool_path(tool[:-len('.py')])
    return run_python(script, *args, cwd=cwd or REPO_ROOT,
                      env=dict(PYTHONPATH=str(REPO_ROOT)), check=check,
                      timeout=timeout)


@pytest.fixture(scope='session')
def packaged_tool():
    """:func:`run_packaged_tool`."""
    return run_packaged_tool


def _newest(pattern):
    files = sorted(glob.glob(pattern), key=os.path.getmtime)
    assert files, f'nothing matches {pattern}'
    return files[-1]


@pytest.fixture(scope='session')
def digits_runs():
    """Tiny DigitsLT runs trained by MMPretrain's packaged tools/train.py:
    2 epochs of LPT phase 1 on the configs' frozen tiny ViT, then 1 of
    phase 2. Accuracies mean nothing; the files are real. Attributes:
    ``phase1_dir``, ``phase2_dir``, ``phase{1,2}_full`` and
    ``phase{1,2}_prompts`` (the files the runs wrote), ``phase{1,2}_options``
    (the --cfg-options that point the configs at these runs)."""
    # Not under pytest's basetemp: other pytest sessions on the machine
    # prune old basetemps while this session still uses its files.
    with tempfile.TemporaryDirectory(prefix='digits_runs_') as tmp:
        yield _train_digits_runs(Path(tmp))


def _train_digits_runs(root):
    configs = REPO_ROOT / 'configs' / 'lpt'

    def train(config, work_dir, *options):
        run_packaged_tool('train.py', configs / config, '--work-dir',
                          work_dir, '--cfg-options', *options, cwd=root)

    phase1_options = []
    phase1_dir = root / 'phase1'
    train('phase1_digits.py', phase1_dir, 'train_cfg.max_epochs=2',
          *phase1_options)
    phase2_options = phase1_options + [f'model.phase1_checkpoint={phase1_dir}']
    phase2_dir = root / 'phase2'
    train('phase2_digits.py', phase2_dir, 'train_cfg.max_epochs=1',
          *phase2_options)
    return SimpleNamespace(
        root=root,
        phase1_dir=phase1_dir,
        phase2_dir=phase2_dir,
        phase1_full=str(phase1_dir / 'epoch_2.pth'),
        phase1_prompts=_newest(str(phase1_dir / '*prompt*.pth')),
        phase2_full=str(phase2_dir / 'epoch_1.pth'),
        phase2_prompts=_newest(str(phase2_dir / '*prompt*.pth')),
        phase1_options=phase1_options,
        phase2_options=phase2_options)


# ---------------------------------------------------------------------------
# Shared by the test modules (import them with `from conftest import ...`).

# The tiny ViT of the unit tests, and the arch of the shipped DigitsLT
# stand-in (configs/lpt/digits_pretrain_vit_tiny.py).
TINY_VIT = dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)
DIGITS_VIT = dict(
    embed_dims=64, num_layers=6, num_heads=4, feedforward_channels=128)
TOOLS = REPO_ROOT / 'tools'
sys.path.append(str(TOOLS))  # the tools' own package, lpt_tools


def save_random_vit(path, arch=DIGITS_VIT, img_size=32, patch_size=8,
                    seed=0):
    """Save a random MMPretrain ViT as ``{'state_dict': ...}``; return it."""
    import torch
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(seed)
    vit = VisionTransformer(arch=arch, img_size=img_size,
                            patch_size=patch_size)
    torch.save(dict(state_dict=vit.state_dict()), path)
    return vit


def run_python(*args, cwd=REPO_ROOT, env=None, check=True, timeout=None):
    """Run ``python ARGS`` (this interpreter, one thread) in ``cwd``; stdout
    and stderr merged into ``.stdout``. With ``check``, a non-zero exit fails
    the test with the output's tail."""
    full_env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1',
                    PYTHON=sys.executable)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, *map(str, args)],
                          cwd=str(cwd),
                          env=full_env,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-6000:]}')
    return proc


def load_tool(name):
    """Import ``tools/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(
        f'_tool_{name.replace("/", "_")}', TOOLS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_collection_modifyitems(config, items):
    """Tests that use the packaged-tool runs are slow too."""
    for item in items:
        if {'digits_runs', 'packaged_tool'} & set(
                getattr(item, 'fixturenames', ())):
            item.add_marker(pytest.mark.slow)
