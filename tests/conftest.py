import os

# One BLAS/OpenMP thread per process: the distributed and tool tests start
# several processes on small machines, and oversubscribed threads slow them
# down by an order of magnitude. Set before torch is imported by the tests.
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('MKL_NUM_THREADS', '1')

# ---------------------------------------------------------------------------
# MMPretrain's own tools, as `mim train/test` runs them: the scripts packaged
# in mmpretrain/.mim/tools, started as subprocesses.
import contextlib  # noqa: E402
import glob  # noqa: E402
import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from unittest import mock  # noqa: E402

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
    return run_python(
        script,
        *args,
        cwd=cwd or REPO_ROOT,
        env=dict(PYTHONPATH=str(REPO_ROOT)),
        check=check,
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
    (the --cfg-options that point the configs at these runs).

    Trained once per test run: the first pytest-xdist worker that needs the
    runs trains them under a lock; the others wait and read the same files.
    Read them, never write them."""
    root = shared_dir('digits_runs')
    with _locked(root / '.lock'):
        if not (root / 'done').exists():
            runs = _train_digits_runs(root)
            (root / 'done').touch()
        else:
            runs = _digits_runs(root)
    return runs


# Folders that every pytest-xdist worker of this run shares: not under
# pytest's basetemp (one per worker; other pytest sessions on the machine
# prune old basetemps), removed when the run ends.
_SHARED_ENV = 'LPT_TESTS_SHARED_DIR'


def pytest_configure(config):
    # The controller (or the only process) names the folder; the workers
    # it starts inherit the variable.
    if not hasattr(config, 'workerinput') and _SHARED_ENV not in os.environ:
        os.environ[_SHARED_ENV] = tempfile.mkdtemp(prefix='lpt_tests_')
        config._lpt_shared_dir = os.environ[_SHARED_ENV]


def pytest_unconfigure(config):
    import shutil
    path = getattr(config, '_lpt_shared_dir', None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
        del os.environ[_SHARED_ENV]


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    # After a test file (its module-scoped fixtures torn down): hand the
    # freed heap back to the system, so that a worker's memory is what its
    # current file holds, not the largest file it ran (the suite's budget is
    # 3 GB for all its processes).
    if nextitem is not None and nextitem.module is item.module:
        return
    import ctypes
    import gc
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL('libc.so.6').malloc_trim(0)


def pytest_sessionfinish(session):
    # pytest-xdist's controller imports the module of each warning category
    # that a worker reports: a warning from torch would load torch there too.
    config = session.config
    if (not hasattr(config, 'workerinput')
            and getattr(config.option, 'numprocesses', None)
            and 'torch' in sys.modules):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        writer = config.get_terminal_writer()
        writer.line()
        writer.line(
            'conftest: the pytest-xdist controller imported torch (a worker '
            'reported a warning whose category lives in torch: silence it '
            'where the test causes it).',
            red=True)


def shared_dir(name):
    """``<the run's shared folder>/name``, created if missing."""
    path = Path(os.environ[_SHARED_ENV]) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _locked(path):
    """An exclusive lock on ``path`` across the processes of the run."""
    import fcntl
    with open(path, 'w') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _phase_options(root):
    """The --cfg-options of each phase that point it at the runs in root."""
    return dict(
        phase1=[], phase2=[f'model.phase1_checkpoint={root / "phase1"}'])


def _train_digits_runs(root):
    for phase, epochs in (('phase1', 2), ('phase2', 1)):
        run_packaged_tool(
            'train.py',
            REPO_ROOT / 'configs' / 'lpt' / f'{phase}_digits.py',
            '--work-dir',
            root / phase,
            '--cfg-options',
            f'train_cfg.max_epochs={epochs}',
            *_phase_options(root)[phase],
            cwd=root)
    return _digits_runs(root)


def _digits_runs(root):
    phase1_dir, phase2_dir = root / 'phase1', root / 'phase2'
    options = _phase_options(root)
    return SimpleNamespace(
        root=root,
        phase1_dir=phase1_dir,
        phase2_dir=phase2_dir,
        phase1_full=str(phase1_dir / 'epoch_2.pth'),
        phase1_prompts=_newest(str(phase1_dir / '*prompt*.pth')),
        phase2_full=str(phase2_dir / 'epoch_1.pth'),
        phase2_prompts=_newest(str(phase2_dir / '*prompt*.pth')),
        phase1_options=options['phase1'],
        phase2_options=options['phase2'])


# What a user's clone holds after the README's first command
# (`python tools/demo.py`): the repository, and the demo's outputs under
# work_dirs/demo. The demo runs in its quick mode (1 epoch per step, seed 0);
# each step's files are also linked under the names the full run writes
# (epoch_E*.pth, E the config's max_epochs), so that the pages' commands
# run as written. test_demo.py checks the demo run itself.
DEMO_OUTPUT = 'demo_output.txt'  # the demo's stdout and stderr, in the tree
USER_TREE_SKIP = {'.git', 'work_dirs', 'site', '.pytest_cache', 'data'}


def _make_user_tree(root):
    from mmengine.config import Config
    for entry in REPO_ROOT.iterdir():
        if entry.name not in USER_TREE_SKIP:
            (root / entry.name).symlink_to(entry)
    # one step at a time: beside the other pytest-xdist worker, two steps
    # would take the suite past its memory budget
    proc = run_python(
        'tools/demo.py',
        '--quick',
        '--seeds',
        '0',
        '--jobs',
        '1',
        '--work-dir',
        'work_dirs/demo',
        cwd=root,
        timeout=1200)
    (root / DEMO_OUTPUT).write_text(proc.stdout)
    demo = load_tool('demo')
    for key, _, config, _ in demo.MODELS:
        epochs = Config.fromfile(REPO_ROOT / config).train_cfg.max_epochs
        step = root / 'work_dirs' / 'demo' / 'seed_0' / key
        for quick in step.glob('epoch_1*.pth'):
            name = quick.name.replace('epoch_1', f'epoch_{epochs}', 1)
            if epochs != 1 and not (step / name).exists():
                (step / name).symlink_to(quick.name)


@pytest.fixture(scope='session')
def user_tree():
    """A folder laid out as a user's clone after the demo (see
    :func:`_make_user_tree`); made once per test run, shared by the
    pytest-xdist workers. Run commands in it; do not change what is there."""
    root = shared_dir('user_tree')
    with _locked(root.parent / 'user_tree.lock'):
        if not (root / '.done').exists():
            _make_user_tree(root)
            (root / '.done').touch()
    return root


# ---------------------------------------------------------------------------
# Shared by the test modules (import them with `from conftest import ...`).

# The tiny ViT of the unit tests, and the arch of the shipped DigitsLT
# stand-in (configs/lpt/digits_pretrain_vit_tiny.py).
TINY_VIT = dict(
    embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)
DIGITS_VIT = dict(
    embed_dims=64, num_layers=6, num_heads=4, feedforward_channels=128)
TOOLS = REPO_ROOT / 'tools'
sys.path.append(str(TOOLS))  # the tools' own package, lpt_tools


def save_random_vit(path, arch=DIGITS_VIT, img_size=32, patch_size=8, seed=0):
    """Save a random MMPretrain ViT as ``{'state_dict': ...}``; return it."""
    import torch
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(seed)
    vit = VisionTransformer(
        arch=arch, img_size=img_size, patch_size=patch_size)
    torch.save(dict(state_dict=vit.state_dict()), path)
    return vit


@contextlib.contextmanager
def on_meta():
    """Build models inside this: their tensors are on the ``meta`` device
    (names, shapes, ``requires_grad``; no storage, no init), so a config
    check of a ViT-L costs no gigabyte of random floats. ``torch.linspace``
    stays on the CPU: MMPretrain's ResNet and Swin read their drop-path rates
    from it with ``.item()``."""
    import torch
    linspace = torch.linspace

    def cpu_linspace(*args, **kwargs):
        kwargs.setdefault('device', 'cpu')
        return linspace(*args, **kwargs)

    with torch.device('meta'), mock.patch.object(torch, 'linspace',
                                                 cpu_linspace):
        yield


def run_python(*args, cwd=REPO_ROOT, env=None, check=True, timeout=None):
    """Run ``python ARGS`` (this interpreter, one thread) in ``cwd``; stdout
    and stderr merged into ``.stdout``. With ``check``, a non-zero exit fails
    the test with the output's tail."""
    full_env = dict(
        os.environ,
        OMP_NUM_THREADS='1',
        PYTHONUNBUFFERED='1',
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


class Workspace:
    """A folder for tool runs on the DigitsLT configs: a random tiny ViT
    (``backbone``), test-only modules that the runs import through
    ``custom_imports`` (``modules``: ``{name: source}``), configs derived
    from shipped ones (:meth:`derive`), and the runs' environment (one
    thread, CPU only, the modules on ``PYTHONPATH``)."""

    def __init__(self, root, modules=None, backbone=True):
        self.root = Path(root)
        self.backbone = None
        if backbone:
            self.backbone = self.root / 'vit_tiny.pth'
            save_random_vit(self.backbone)
        module_dir = self.root / 'modules'
        module_dir.mkdir()
        for name, source in (modules or {}).items():
            (module_dir / f'{name}.py').write_text(source)
        self.imports = list(modules or {})
        self.env = dict(
            os.environ,
            OMP_NUM_THREADS='1',
            PYTHONUNBUFFERED='1',
            # the gloo runs on CPU, also on a machine with a GPU
            CUDA_VISIBLE_DEVICES='',
            PYTHON=sys.executable,
            PYTHONPATH=os.pathsep.join(
                [str(module_dir),
                 os.environ.get('PYTHONPATH', '')]))

    def derive(self, base, name, hooks=(), extra=''):
        """Write ``root/name.py``: config ``base`` importing the modules,
        with ``hooks`` after its own custom hooks, then ``extra`` lines."""
        from mmengine.config import Config
        own = [h.to_dict() for h in Config.fromfile(base).custom_hooks]
        path = self.root / f'{name}.py'
        path.write_text(f'_base_ = [{str(base)!r}]\n'
                        'custom_imports = dict('
                        f'imports={["lpt_mmpretrain"] + self.imports!r}, '
                        'allow_failed_imports=False)\n'
                        f'custom_hooks = {own + list(hooks)!r}\n' + extra)
        return path

    def run(self, cmd, check=True, **kwargs):
        """Run ``cmd`` in the folder; stdout and stderr merged into
        ``.stdout``. With ``check``, a non-zero exit fails the test."""
        proc = subprocess.run([str(c) for c in cmd],
                              cwd=self.root,
                              env=self.env,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT,
                              text=True,
                              **kwargs)
        if check:
            assert proc.returncode == 0, \
                f'{cmd} failed ({proc.returncode}):\n{proc.stdout[-6000:]}'
        return proc

    def train(self, config, work_dir, *args, options=(), check=True, **kwargs):
        """tools/train.py CONFIG --work-dir WORK_DIR --no-validate ARGS
        --cfg-options OPTIONS (the backbone's, when there is one, first)."""
        if self.backbone is not None:
            options = [
                f'model.backbone.init_cfg.checkpoint={self.backbone}', *options
            ]
        return self.run([
            sys.executable, TOOLS / 'train.py', config, '--work-dir', work_dir,
            '--no-validate', *args, '--cfg-options', *options
        ],
                        check=check,
                        **kwargs)


def run_tool(name, *argv, cwd=None):
    """``tools/<name>.py ARGV`` in this process (its ``main()`` reads
    ``sys.argv``), in ``cwd``; returns what it printed and logged to stdout.
    For our own tools where the process boundary is not what is tested."""
    import io
    import uuid
    tool = load_tool(name)
    out = io.StringIO()
    # MMEngine names a run's logger, visualizer and scope after the config
    # and the second it starts: two runs in one process and one second would
    # share them (and the first run's captured stream).
    argv = [
        *map(str, argv), '--cfg-options',
        f'experiment_name={name}_{uuid.uuid4().hex}'
    ]
    with mock.patch.object(sys, 'argv', [f'{name}.py', *argv]), \
            contextlib.chdir(cwd or os.getcwd()), \
            contextlib.redirect_stdout(out):
        tool.main()
    return out.getvalue()


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
        if {'digits_runs', 'packaged_tool', 'user_tree'} & set(
                getattr(item, 'fixturenames', ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope='session')
def own_data_runs():
    """A tiny run on image files with MMPretrain's CustomDataset
    (configs/lpt/*_own_data_standin*.py): DigitsLT exported as a folder per
    class (PNG and JPEG, class names with spaces, 340 training and 300 val
    images), phase 1 (1 epoch, validated) on the folder layout and phase 2
    (1 epoch) on the annotation-file layout, both through tools/train.py.
    Attributes: ``data_root``, ``phase{1,2}_dir``, ``phase{1,2}_full``,
    ``phase{1,2}_prompts``, ``phase1_log`` (its stdout), ``env`` (the
    LPT_DATA_ROOT environment) and ``ann_options`` (the --cfg-options of
    the annotation-file layout). Trained once per test run, under a lock;
    read them, never write them."""
    root = shared_dir('own_data_runs')
    data_root = root / 'data'
    env = dict(PYTHONPATH=str(REPO_ROOT), LPT_DATA_ROOT=str(data_root))
    meta = data_root / 'meta'
    ann_options = [
        f'{split}_dataloader.dataset.{key}' for split in ('train', 'val')
        for key in ('data_prefix=', f'ann_file=meta/{split}.txt',
                    f'classes={meta / "classes.txt"}')
    ]
    configs = REPO_ROOT / 'configs' / 'lpt'
    with _locked(root / '.lock'):
        if not (root / 'done').exists():
            run_python(TOOLS / 'dataset_converters' / 'digits_to_folders.py',
                       data_root)
            log = run_python(
                TOOLS / 'train.py',
                configs / 'phase1_own_data_standin.py',
                '--work-dir',
                root / 'phase1',
                '--cfg-options',
                'train_cfg.max_epochs=1',
                'train_cfg.val_interval=1',
                cwd=root,
                env=env).stdout
            (root / 'phase1.log').write_text(log)
            run_python(
                TOOLS / 'train.py',
                configs / 'phase2_own_data_standin.py',
                '--work-dir',
                root / 'phase2',
                '--no-validate',
                '--cfg-options',
                'train_cfg.max_epochs=1',
                f'model.phase1_checkpoint={root / "phase1"}',
                *ann_options[:3],  # the training split's
                cwd=root,
                env=env)
            (root / 'done').touch()
    return SimpleNamespace(
        root=root,
        data_root=data_root,
        env=env,
        ann_options=ann_options,
        phase1_log=(root / 'phase1.log').read_text(),
        **{
            f'phase{i}_{kind}': str(root / f'phase{i}' / name)
            for i in (1, 2)
            for kind, name in (('full', 'epoch_1.pth'),
                               ('prompts', 'epoch_1_prompts.pth'))
        },
        phase1_dir=root / 'phase1',
        phase2_dir=root / 'phase2')
