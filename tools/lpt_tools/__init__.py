"""The code behind the tools in ``tools/`` (not installed, not imported by
``lpt_mmpretrain``): :mod:`.benchmark` behind ``tools/benchmark.py``,
:mod:`.data` behind the data-set tools.

The scripts in ``tools/`` find this package next to them; the ones in
sub-folders put ``tools/`` on ``sys.path`` first, and so does
``tests/conftest.py``.
"""
