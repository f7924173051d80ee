"""No file of the repository cites the method sheet that lives outside it;
the method description a user can open is docs/method.md."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Spelled in two pieces so that this file does not match itself.
EXTERNAL = 'LPT_' + 'SPEC'


def repository_files():
    """Tracked files plus new ones git does not ignore."""
    if shutil.which('git') is None or not (ROOT / '.git').exists():
        pytest.skip('not a git checkout')
    out = subprocess.run([
        'git', 'ls-files', '--cached', '--others', '--exclude-standard', '-z'
    ],
                         cwd=ROOT,
                         check=True,
                         capture_output=True).stdout
    return [ROOT / p for p in out.decode().split('\0') if p]


def test_no_file_cites_the_external_method_sheet():
    offenders = []
    for path in repository_files():
        if not path.is_file():
            continue  # deleted in the working tree
        try:
            text = path.read_text(encoding='utf-8')
        except UnicodeDecodeError:
            continue  # binary
        for number, line in enumerate(text.splitlines(), 1):
            if EXTERNAL in line:
                offenders.append(f'{path.relative_to(ROOT)}:{number}')
    assert not offenders, (
        f'{len(offenders)} line(s) cite {EXTERNAL}.md, which is not in the '
        'repository; cite docs/method.md instead: ' + ', '.join(offenders))


def test_the_method_description_is_in_the_repository():
    text = (ROOT / 'docs' / 'method.md').read_text(encoding='utf-8')
    for section in ('## Phase 1', '## Phase 2', 'released code differ',
                    'measured and accept'):
        assert section in text
