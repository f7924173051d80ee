"""Serving many LPT tasks over HTTP (Ray Serve): ``pip install -e .[serve]``.

- :mod:`.images`: uploaded bytes -> the image array, with size limits;
- :mod:`.registry`: the tasks of a server, registration with the checks;
- :mod:`.app`: the Ray Serve deployment and its HTTP API;
- :mod:`.launch`: start it (``tools/deployment/serve.py``), shut it down.

Only :mod:`.app` and :mod:`.launch` import Ray; ``import lpt_mmpretrain``
never imports this package. See ``docs/serving.md``.
"""
from .images import *  # noqa: F401,F403
from .registry import *  # noqa: F401,F403
