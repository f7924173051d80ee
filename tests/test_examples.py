"""The pages' examples run as written: every block marked
``<!-- example: NAME -->`` runs (blocks of one name in page order, shell
in one ``bash -euo pipefail`` script, as in one terminal, Python blocks
through this interpreter as ``python``) in a user's
clone after the README's first command (``conftest.user_tree``: the demo's
outputs under work_dirs/demo). Every other shell or Python block says why
it does not run here (``<!-- not run: REASON -->``)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lpt_tools import docs

ROOT = Path(__file__).resolve().parents[1]
PAGES = [p for p in docs.doc_files(ROOT) if 'benchmarks/raw' not in str(p)]
EXAMPLES = [(page, name, blocks) for page in PAGES
            for name, blocks in docs.examples(page.read_text()).items()]


def _id(example):
    page, name, _ = example
    return f'{page.relative_to(ROOT)}:{name}'


def test_every_block_is_marked():
    unmarked = [
        f'{page.relative_to(ROOT)}:{block.line}' for page in PAGES
        for block in docs.unmarked(page.read_text())
    ]
    assert unmarked == [], (
        'mark each block `<!-- example: NAME -->` (tests/test_examples.py '
        'runs it) or `<!-- not run: REASON -->` on the line above its fence')


def test_examples_found():
    names = {_id(e) for e in EXAMPLES}
    assert any(n.startswith('README.md:') for n in names), names


def _run(blocks, cwd, env):
    script = docs.example_script(blocks)
    proc = subprocess.run(['bash', '-euo', 'pipefail', '-c', script],
                          cwd=cwd,
                          env=env,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=1200)
    assert proc.returncode == 0, (
        f'the example failed ({proc.returncode}); the block is the last '
        f'"### line N" below:\n{proc.stdout[-8000:]}')
    return proc.stdout


def test_example_script_keeps_the_shell_state(tmp_path):
    page = ('<!-- example: a -->\n```bash\nexport LPT_X=7\n```\n'
            '<!-- example: a -->\n```python\nimport os\n'
            'print("x =", os.environ["LPT_X"])\n```\n'
            '<!-- example: a -->\n```bash\nfalse\necho never\n```\n')
    script = docs.example_script(docs.examples(page)['a'])
    proc = subprocess.run(['bash', '-euo', 'pipefail', '-c', script],
                          cwd=tmp_path,
                          env=dict(
                              os.environ,
                              PATH=os.pathsep.join([
                                  str(Path(sys.executable).parent),
                                  os.environ['PATH']
                              ])),
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        '### line 3', '### line 7', 'x = 7', '### line 12'
    ]


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize('example', EXAMPLES, ids=_id)
def test_example_runs(example, user_tree):
    _, _, blocks = example
    # `python` is this interpreter, as after `source .venv/bin/activate`
    env = dict(
        os.environ,
        PATH=os.pathsep.join(
            [str(Path(sys.executable).parent), os.environ['PATH']]),
        OMP_NUM_THREADS='1',
        PYTHONWARNINGS='ignore::UserWarning')
    _run(blocks, user_tree, env)
