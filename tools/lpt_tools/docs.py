"""What the documentation shows, read from its Markdown: links, heading
anchors, the commands in its code blocks, and the blocks marked to run.

``tests/test_docs.py`` checks with these that every relative link and anchor
resolves, that every ``python tools/...`` / ``bash tools/...`` command names
a tool and a config that exist, and runs the blocks marked
``<!-- example: NAME -->`` (see :func:`examples`). Every shell or Python
block carries that mark or ``<!-- not run: REASON -->`` (a GPU, data or
weights this machine lacks, a config fragment): :func:`unmarked`.
"""
import re
import shlex
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Set

__all__ = [
    'Block', 'doc_files', 'code_blocks', 'links', 'github_anchors',
    'mkdocs_anchors', 'commands', 'examples', 'example_script', 'unmarked'
]

FENCE = re.compile(r'^(\s*)(`{3,}|~{3,})\s*([\w+-]*)')
EXAMPLE = re.compile(r'<!--\s*example:\s*([\w-]+)\s*-->')
NOT_RUN = re.compile(r'<!--\s*not run:\s*(.+?)\s*-->')
RUNNABLE = ('bash', 'sh', 'shell', 'console', 'python')
# [text](target) and ![alt](target); a title after the target is dropped
LINK = re.compile(r'!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?'
                  r'(?:\s+"[^"]*")?\s*\)')
HEADING = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$')
TOOL = re.compile(r'^(tools/\S+\.(?:py|sh))$')


class Block(NamedTuple):
    """A fenced code block: its info string, text, first line (1-based),
    the example name of a ``<!-- example: NAME -->`` line above it, or the
    reason of a ``<!-- not run: REASON -->`` line."""
    lang: str
    text: str
    line: int
    example: Optional[str]
    not_run: Optional[str]


def doc_files(root: Path) -> List[Path]:
    """The pages users read: README.md, CHANGELOG.md, CONTRIBUTING.md, every
    page under docs/ and every README under configs/."""
    files = [
        root / name
        for name in ('README.md', 'CHANGELOG.md', 'CONTRIBUTING.md')
    ]
    files += sorted((root / 'docs').rglob('*.md'))
    files += sorted((root / 'configs').rglob('README.md'))
    return [f for f in files if f.is_file()]


def _split(text: str):
    """(prose lines with their numbers, code blocks)."""
    prose, blocks = [], []
    lines = text.splitlines()
    i, pending, reason = 0, None, None
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            found, skip = EXAMPLE.search(lines[i]), NOT_RUN.search(lines[i])
            if found or skip:
                pending = found and found.group(1)
                reason = skip and skip.group(1)
            elif lines[i].strip():
                pending = reason = None
            prose.append((i + 1, lines[i]))
            i += 1
            continue
        fence, lang, start = match.group(2), match.group(3), i + 1
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        indent = len(match.group(1))
        body = [
            line[indent:] if line[:indent].isspace() else line for line in body
        ]
        blocks.append(
            Block(lang, '\n'.join(body) + '\n', start + 1, pending, reason))
        pending = reason = None
        i += 1
    return prose, blocks


def code_blocks(text: str) -> List[Block]:
    """The fenced code blocks of a Markdown text."""
    return _split(text)[1]


def _without_inline_code(line: str) -> str:
    return re.sub(r'(`+)(?:(?!\1).)+\1', '', line)


def links(text: str) -> Iterator[tuple]:
    """(line number, target) of every Markdown link outside code."""
    for number, line in _split(text)[0]:
        for match in LINK.finditer(_without_inline_code(line)):
            yield number, match.group(1)


def _headings(text: str) -> Iterator[str]:
    for _, line in _split(text)[0]:
        match = HEADING.match(line)
        if match:
            yield match.group(2)


def _plain(heading: str) -> str:
    heading = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', heading)  # links
    return heading.replace('`', '').replace('*', '')


def github_anchors(text: str) -> Set[str]:
    """The anchors GitHub gives the headings (repeats get ``-1``, ...)."""
    seen: Dict[str, int] = {}
    anchors = set()
    for heading in _headings(text):
        slug = re.sub(r'[^\w\- ]', '', _plain(heading).lower().strip())
        slug = slug.replace(' ', '-')
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f'{slug}-{count}')
    return anchors


def mkdocs_anchors(text: str) -> Set[str]:
    """The anchors MkDocs (Python-Markdown's toc) gives the headings."""
    seen: Dict[str, int] = {}
    anchors = set()
    for heading in _headings(text):
        slug = re.sub(r'[^\w\s-]', '', _plain(heading)).strip().lower()
        slug = re.sub(r'[-\s]+', '-', slug)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f'{slug}_{count}')
    return anchors


def _logical_lines(script: str) -> Iterator[str]:
    """Shell lines with backslash continuations joined, comments dropped."""
    current = ''
    for line in script.splitlines():
        stripped = line.split(
            ' #')[0] if not line.lstrip().startswith('#') else ''
        if stripped.rstrip().endswith('\\'):
            current += stripped.rstrip()[:-1] + ' '
            continue
        current += stripped
        if current.strip():
            yield current.strip()
        current = ''
    if current.strip():
        yield current.strip()


def commands(text: str) -> Iterator[tuple]:
    """(line, tool, configs) of every ``python tools/...`` or ``bash
    tools/...`` command in a page's shell blocks and inline code; configs
    are the command's arguments that look like ``configs/....py``."""
    sources = [(b.line, b.text) for b in code_blocks(text)
               if b.lang in ('', 'bash', 'sh', 'shell', 'console')]
    sources += [(number, code) for number, line in _split(text)[0]
                for code in re.findall(r'`([^`]+)`', line)]
    for number, source in sources:
        for line in _logical_lines(source):
            for part in re.split(r'&&|\|\||;|\|', line):
                try:
                    words = shlex.split(part)
                except ValueError:
                    words = part.split()
                words = [w for w in words if '=' not in w or '/' in w]
                for i, word in enumerate(words[:-1]):
                    name = Path(word).name
                    if (name in ('python', 'python3', 'bash', 'sh')
                            and TOOL.match(words[i + 1])):
                        configs = [
                            w for w in words[i + 2:]
                            if re.fullmatch(r'configs/[\w/.-]+\.py', w)
                        ]
                        yield number, words[i + 1], configs
                        break


def examples(text: str) -> Dict[str, List[Block]]:
    """The code blocks marked ``<!-- example: NAME -->`` (the line above
    the fence), by name in page order: one example may span blocks."""
    found: Dict[str, List[Block]] = {}
    for block in code_blocks(text):
        if block.example:
            found.setdefault(block.example, []).append(block)
    return found


SHELLS = ('bash', 'sh', 'shell', 'console')
HEREDOC = 'LPT_EXAMPLE_PYTHON'


def example_script(blocks: List[Block], python: str = 'python') -> str:
    """One bash script of an example's blocks, in order, as a reader runs
    them in one terminal: what a shell block exports holds for the blocks
    after it; a Python block is ``python - <<'HEREDOC'``. Each block is
    announced on stderr (``### line N``) so a failure names its block."""
    parts = []
    for block in blocks:
        parts.append(f'echo "### line {block.line}" >&2')
        if block.lang == 'python':
            if HEREDOC in block.text:
                raise ValueError(f'line {block.line}: the block contains '
                                 f'{HEREDOC}')
            parts.append(f"{python} - <<'{HEREDOC}'\n{block.text}\n"
                         f'{HEREDOC}')
        elif block.lang in SHELLS:
            parts.append(block.text)
        else:
            raise ValueError(f'line {block.line}: an example must be a shell '
                             f'or Python block, not {block.lang!r}')
    return '\n'.join(parts) + '\n'


def unmarked(text: str) -> List[Block]:
    """The shell and Python blocks with neither an example nor a not-run
    mark."""
    return [
        b for b in code_blocks(text)
        if b.lang in RUNNABLE and not b.example and not b.not_run
    ]
