"""Benchmarks behind ``tools/benchmark.py`` (see ``docs/benchmarks/index.md``).

Not imported by ``import lpt_mmpretrain``; ``deploy`` needs the ``deploy``
extra only when its ONNX Runtime backend runs.
"""
from .lpt import *  # noqa: F401,F403
from .measure import *  # noqa: F401,F403
