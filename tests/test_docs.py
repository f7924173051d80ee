"""The pages users read hold: every relative link and anchor resolves, every
``python tools/...`` / ``bash tools/...`` command names a tool and configs
that exist, the docs site builds (MkDocs, warnings as errors), and the
repository's citation file parses."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lpt_tools import docs

ROOT = Path(__file__).resolve().parents[1]
PAGES = docs.doc_files(ROOT)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_pages_found():
    names = {_rel(p) for p in PAGES}
    assert {
        'README.md', 'CHANGELOG.md', 'docs/index.md', 'configs/lpt/README.md'
    } <= names


@pytest.mark.parametrize('page', PAGES, ids=_rel)
def test_links_and_anchors_resolve(page):
    text = page.read_text()
    broken = []
    for line, target in docs.links(text):
        if '://' in target or target.startswith('mailto:'):
            continue
        path, _, anchor = target.partition('#')
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f'{_rel(page)}:{line}: {target}: no such file')
            continue
        if anchor:
            if dest.suffix != '.md':
                broken.append(f'{_rel(page)}:{line}: {target}: an anchor '
                              'into a file that is not Markdown')
                continue
            target_text = dest.read_text()
            github = docs.github_anchors(target_text)
            mkdocs = docs.mkdocs_anchors(target_text)
            if anchor not in github or (dest.is_relative_to(ROOT / 'docs')
                                        and anchor not in mkdocs):
                broken.append(f'{_rel(page)}:{line}: {target}: no heading '
                              f'with that anchor (GitHub: {sorted(github)})')
    assert broken == []


@pytest.mark.parametrize('page', PAGES, ids=_rel)
def test_commands_name_files_that_exist(page):
    missing = []
    for line, tool, configs in docs.commands(page.read_text()):
        for name in [tool, *configs]:
            if not (ROOT / name).is_file():
                missing.append(f'{_rel(page)}:{line}: {name}')
    assert missing == []


def test_checkers_catch_breakage():
    text = ('# A `b` title\n\n## Train & test\n\n[x](#a-b-title) '
            '[y](missing.md) `[z](inline.md)`\n\n```bash\n'
            'python tools/train.py configs/lpt/x.py \\\n  --seed 1\n'
            'CUDA=1 bash tools/dist_train.sh configs/y.py 8\n```\n')
    assert list(docs.links(text)) == [(5, '#a-b-title'), (5, 'missing.md')]
    assert docs.github_anchors(text) == {'a-b-title', 'train--test'}
    assert docs.mkdocs_anchors(text) == {'a-b-title', 'train-test'}
    assert [(t, c) for _, t, c in docs.commands(text)
            ] == [('tools/train.py', ['configs/lpt/x.py']),
                  ('tools/dist_train.sh', ['configs/y.py'])]


def test_docs_site_builds_strict(tmp_path):
    """``mkdocs build --strict`` (the command the README names): warnings,
    such as a page left out of the navigation or a broken anchor, fail."""
    result = subprocess.run([
        sys.executable, '-m', 'mkdocs', 'build', '--strict', '--site-dir',
        str(tmp_path / 'site')
    ],
                            cwd=ROOT,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / 'site' / 'index.html').is_file()


def test_citation_file():
    cff = yaml.safe_load((ROOT / 'CITATION.cff').read_text())
    from lpt_mmpretrain import __version__
    assert cff['cff-version'] == '1.2.0'
    assert cff['version'] == __version__
    assert cff['license'] == 'Apache-2.0'
    assert 'Long-tailed Prompt Tuning' in cff['preferred-citation']['title']
    assert 'Apache License' in (ROOT / 'LICENSE').read_text()
