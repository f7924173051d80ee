"""Everything about checkpoint files: the floor under the models.

- :mod:`.state_dict`: what LPT trains and what is frozen, the fingerprint
  of a backbone, the one key / shape check;
- :mod:`.errors`, :mod:`.messages`: one helper per kind of error, one
  table of the messages (problems and likely fixes);
- :mod:`.files`: reading files into flat state dicts;
- :mod:`.converters`: timm, CLIP and the released LPT layouts -> ours;
- :mod:`.pretrained`, :mod:`.classifier`: what the backbone's and the
  classifier's load hooks call;
- :mod:`.prompt_only`: the prompt-only format (write, read, complete);
- :mod:`.standin`: the ``standin://`` scheme of the shipped tiny ViT;
- :mod:`.saving`: atomic writes (:func:`atomic_torch_save`).

It imports nothing from the package above it (models, data sets, engine,
APIs).
"""
from .classifier import *  # noqa: F401,F403
from .converters import *  # noqa: F401,F403
from .errors import *  # noqa: F401,F403
from .files import *  # noqa: F401,F403
from .messages import *  # noqa: F401,F403
from .pretrained import *  # noqa: F401,F403
from .prompt_only import *  # noqa: F401,F403
from .saving import *  # noqa: F401,F403
from .standin import *  # noqa: F401,F403
from .state_dict import *  # noqa: F401,F403
