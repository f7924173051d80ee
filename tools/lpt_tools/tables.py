"""The one markdown-table formatter of the tools."""
from typing import Sequence

__all__ = ['format_table']


def format_table(header: Sequence[str],
                 rows: Sequence[Sequence],
                 align_right: bool = True) -> str:
    """A markdown table of ``rows`` (cells as ``str``) under ``header``.

    Args:
        header (Sequence[str]): The column names.
        rows (Sequence[Sequence]): One sequence of cells per row.
        align_right (bool): Right-align every column but the first.
            Defaults to True.
    """
    rule = '---:|' if align_right else '---|'
    lines = [
        '| ' + ' | '.join(header) + ' |', '|---|' + rule * (len(header) - 1)
    ]
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)
