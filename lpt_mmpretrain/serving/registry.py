"""The tasks a server holds: registration with the checks, listing, safe
removal while requests run.

:class:`TaskRegistry` wraps a :class:`~lpt_mmpretrain.apis.MultiTaskInferencer`
(its public ``add_task`` / ``remove_task`` / ``classes``) and turns what
goes wrong into a :class:`ServingError` carrying the HTTP status and the
checks' own message. It holds no event loop or thread: the server calls it
from one thread at a time (see :mod:`.app`).
"""
import os.path as osp
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

__all__ = ['ServingError', 'TaskInfo', 'TaskRegistry', 'TASK_NAME']

# A task name is a path segment of the URL.
TASK_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,63}')


class ServingError(Exception):
    """A request the server refuses: HTTP ``status`` and a message naming
    the problem and the fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class TaskInfo:
    """What ``GET /v1/tasks`` reports of a task."""
    name: str
    file: str
    phase: int
    classes: Optional[Tuple[str, ...]]
    num_classes: int
    backbone_fingerprint: str

    def to_json(self) -> dict:
        return dict(
            name=self.name,
            file=self.file,
            phase=self.phase,
            num_classes=self.num_classes,
            classes=None if self.classes is None else list(self.classes),
            backbone_fingerprint=self.backbone_fingerprint)


def _read_safely(path: str) -> dict:
    """The checkpoint dict, read with ``torch.load(weights_only=True)`` only:
    a file holding pickled code is refused (400), never run."""
    import pickle
    import zipfile

    from ..engine.compat.checkpoint import load_from_safe_local
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives
        raise ServingError(
            400, f'{path} is not a checkpoint file (not the zip archive '
            'torch.save writes). A task is the prompt-only `*_prompts.pth` '
            'file LPT training writes.')
    try:
        ckpt = load_from_safe_local(path, map_location='cpu')
    except pickle.UnpicklingError as err:
        raise ServingError(400, str(err)) from None
    except Exception as err:  # not a torch file at all
        raise ServingError(
            400, f'{path} is not a checkpoint file torch.load reads '
            f'({type(err).__name__}: {err}). A task is the prompt-only '
            '`*_prompts.pth` file LPT training writes.') from None
    if not isinstance(ckpt, dict):
        raise ServingError(
            400, f'{path} holds a {type(ckpt).__name__}, not a checkpoint '
            'dict: a task is the prompt-only `*_prompts.pth` file LPT '
            'training writes.')
    return ckpt


class TaskRegistry:
    """The tasks of a :class:`MultiTaskInferencer`, as the server sees them.

    Args:
        inferencer (MultiTaskInferencer): The shared backbone and its tasks
            (added through :meth:`add`, so that each has its info).
    """

    def __init__(self, inferencer) -> None:
        self.inferencer = inferencer
        self._info: Dict[str, TaskInfo] = {}

    @property
    def fingerprint(self) -> str:
        return self.inferencer.fingerprint

    def names(self) -> List[str]:
        return list(self._info)

    def info(self, name: str) -> TaskInfo:
        if name not in self._info:
            raise ServingError(
                404, f'Unknown task {name!r}; the tasks are {self.names()} '
                '(GET /v1/tasks lists them, POST /v1/tasks adds one).')
        return self._info[name]

    def check_new_name(self, name) -> str:
        if not isinstance(name, str) or not TASK_NAME.fullmatch(name):
            raise ServingError(
                400, f'Task name {name!r} is not allowed: 1-64 letters, '
                'digits, "_", "." or "-", starting with a letter or digit.')
        if name in self._info:
            raise ServingError(
                409, f'Task {name!r} exists already (file '
                f'{self._info[name].file}): DELETE /v1/tasks/{name} first or '
                'choose another name.')
        return name

    def add(self, name: str, path) -> TaskInfo:
        """Register prompt-only file ``path`` as task ``name``.

        400: a bad name, a path that is not a file or not a checkpoint, a
        file holding pickled objects; 409: the name is taken, or the file
        does not fit (``MultiTaskInferencer.add_task``'s checks: not
        prompt-only, another backbone, a model its tensors do not fit).
        """
        self.check_new_name(name)
        if not isinstance(path, str) or not path:
            raise ServingError(
                400, f'"path" must be the path of a prompt-only file on the '
                f'server, got {path!r}.')
        if not osp.isfile(path):
            raise ServingError(
                400, f'Prompt-only file {path} does not exist on the server '
                '(the path is read by the server, relative to its working '
                'directory).')
        meta = _read_safely(path).get('meta') or {}
        try:
            self.inferencer.add_task(name, path)
        except (ValueError, TypeError, KeyError, RuntimeError) as err:
            raise ServingError(409, f'{path} does not fit this server: '
                               f'{err}') from None
        model = meta.get('model') or {}
        stack = self.inferencer.stack  # task i is task_names[i]
        num_classes = int(
            stack.num_classes[self.inferencer.task_names.index(name)])
        info = TaskInfo(
            name=name,
            file=osp.abspath(path),
            phase=2 if model.get('neck') else 1,
            classes=self.inferencer.classes(name),
            num_classes=num_classes,
            backbone_fingerprint=self.fingerprint)
        self._info[name] = info
        return info

    def remove(self, name: str) -> TaskInfo:
        info = self.info(name)
        self.inferencer.remove_task(name)
        del self._info[name]
        return info
