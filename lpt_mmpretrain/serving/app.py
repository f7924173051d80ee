"""The multi-task HTTP server: a Ray Serve deployment with a FastAPI app.

One replica holds one frozen backbone and its tasks (a
:class:`~lpt_mmpretrain.apis.MultiTaskInferencer` behind a
:class:`~.registry.TaskRegistry`). Concurrent ``predict`` requests of any
tasks are gathered by ``@serve.batch`` and scored in one mixed batch; the
model runs on one thread of its own, so that task registration, removal
and batches never overlap, while the event loop keeps reading requests.
See ``docs/serving.md`` for the HTTP API.
"""
import asyncio
import collections
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Tuple

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve

from .images import ImageRejected, decode_image
from .registry import ServingError, TaskRegistry

__all__ = ['MultiTaskServer', 'build_app', 'DEFAULTS']

logger = logging.getLogger('ray.serve')

DEFAULTS = dict(
    max_batch_size=16,
    batch_wait_timeout_s=0.01,
    max_image_bytes=20 * 2**20,
    max_image_pixels=40_000_000)

app = FastAPI(
    title='lpt_mmpretrain multi-task server',
    description='Many LPT tasks on one frozen backbone (docs/serving.md).')


def _error(err: Exception) -> JSONResponse:
    status = getattr(err, 'status', 500)
    return JSONResponse(
        status_code=status, content=dict(error=str(err), status=status))


def _test_pipeline(cfg) -> List[dict]:
    """The config's test pipeline without image loading, as MMPretrain's
    ``ImageClassificationInferencer`` builds it."""
    from mmpretrain.datasets import remove_transform
    return remove_transform(cfg.test_dataloader.dataset.pipeline,
                            'LoadImageFromFile')


def _jsonable(result: dict, with_scores: bool) -> dict:
    out = dict(
        task=result['task'],
        pred_label=int(result['pred_label']),
        pred_score=float(result['pred_score']),
        pred_class=result.get('pred_class'))
    if with_scores:
        out['pred_scores'] = [float(s) for s in result['pred_scores']]
    return out


@serve.deployment(name='LPTMultiTask')
@serve.ingress(app)
class MultiTaskServer:
    """Many LPT tasks behind one HTTP endpoint (one Ray Serve replica).

    Args:
        config (str): A config file: its ``model.backbone`` is the frozen
            backbone, its test pipeline and ``model.data_preprocessor``
            prepare every image (as ``ImageClassificationInferencer`` with
            this config does).
        tasks (dict): ``{name: prompt_only_file}`` loaded at start.
        max_batch_size (int): Requests scored in one batch at most.
            Defaults to 16.
        batch_wait_timeout_s (float): How long a batch waits to fill.
            Defaults to 0.01.
        max_image_bytes (int): Larger uploads are refused (413).
            Defaults to 20 MiB.
        max_image_pixels (int): Images of more pixels are refused (413).
            Defaults to 40e6.
        device (str): Defaults to 'cpu'.
        threads (int, optional): ``torch.set_num_threads``. Defaults to
            None (torch's default).
    """

    def __init__(
            self,
            config: str,
            tasks: Dict[str, str],
            max_batch_size: int = DEFAULTS['max_batch_size'],
            batch_wait_timeout_s: float = DEFAULTS['batch_wait_timeout_s'],
            max_image_bytes: int = DEFAULTS['max_image_bytes'],
            max_image_pixels: int = DEFAULTS['max_image_pixels'],
            device: str = 'cpu',
            threads: Optional[int] = None) -> None:
        import torch
        from mmengine.config import Config
        from mmengine.logging import MMLogger

        import lpt_mmpretrain  # noqa: F401  (registers, safe loading)
        from ..apis import MultiTaskInferencer
        if threads:
            torch.set_num_threads(threads)
        # MMEngine's per-tensor init / load notes: not in a server's log
        MMLogger.get_current_instance().setLevel(logging.WARNING)
        cfg = Config.fromfile(config)
        inferencer = MultiTaskInferencer(
            config,
            pipeline=_test_pipeline(cfg),
            data_preprocessor=cfg.model.get('data_preprocessor')
            or cfg.get('data_preprocessor'),
            device=device)
        self.registry = TaskRegistry(inferencer)
        for name, path in tasks.items():
            try:
                self.registry.add(name, path)
            except ServingError as err:
                raise ValueError(f'--tasks {name}={path}: {err}') from None
        self.max_image_bytes = max_image_bytes
        self.max_image_pixels = max_image_pixels
        self.max_batch_size = max_batch_size
        self.batch_wait_timeout_s = batch_wait_timeout_s
        self._score.set_max_batch_size(max_batch_size)
        self._score.set_batch_wait_timeout_s(batch_wait_timeout_s)
        # one thread runs the model and changes the tasks: never both
        self._model_thread = ThreadPoolExecutor(1, 'lpt-model')
        self._in_flight: collections.Counter = collections.Counter()
        self._removing: set = set()
        self._metrics = dict(
            batches=0,
            images=0,
            batch_sizes=collections.Counter(),
            tasks_per_batch=collections.Counter(),
            errors=collections.Counter())
        self._recent = collections.deque(maxlen=100)
        logger.info(
            'LPT server: tasks %s on backbone %s, max batch %d, '
            'wait %.3f s', self.registry.names(), self.registry.fingerprint,
            max_batch_size, batch_wait_timeout_s)

    # ------------------------------------------------------------------ #
    async def _in_model_thread(self, fn, *args):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._model_thread, fn, *args)

    def _acquire(self, task: str) -> None:
        if task in self._removing:
            raise ServingError(404, f'Task {task!r} is being removed.')
        self.registry.info(task)  # 404 for an unknown task
        self._in_flight[task] += 1

    def _release(self, task: str) -> None:
        self._in_flight[task] -= 1
        if not self._in_flight[task]:
            del self._in_flight[task]

    async def _read_upload(self, request: Request) -> bytes:
        """The image bytes: the body, or the file of a multipart upload;
        at most ``max_image_bytes`` are read (413 beyond)."""
        limit = self.max_image_bytes
        length = request.headers.get('content-length')
        too_large = ImageRejected(
            413, f'The upload is larger than the limit of {limit} bytes '
            '(--max-image-bytes).')
        if length is not None and length.isdigit() and int(length) > (
                limit + 64 * 1024):  # multipart headers on top
            raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit + 64 * 1024:
                raise too_large
            chunks.append(chunk)
        data = b''.join(chunks)
        if request.headers.get('content-type',
                               '').startswith('multipart/form-data'):
            data = await self._multipart_file(request, data)
        return data

    async def _multipart_file(self, request: Request, body: bytes) -> bytes:
        from starlette.formparsers import MultiPartException, MultiPartParser

        async def stream():
            yield body

        parser = MultiPartParser(
            request.headers,
            stream(),
            max_files=1,
            max_fields=16,
            max_part_size=self.max_image_bytes)
        try:
            form = await parser.parse()
        except MultiPartException as err:
            raise ImageRejected(
                400, f'The multipart/form-data upload cannot be read: {err} '
                '(send one file field, e.g. curl -F file=@image.jpg).'
            ) from None
        files = [v for _, v in form.multi_items() if hasattr(v, 'read')]
        if not files:
            raise ImageRejected(
                400, 'The multipart/form-data upload holds no file: send the '
                'image as a file field (curl -F file=@image.jpg).')
        return await files[0].read()

    @serve.batch(
        max_batch_size=DEFAULTS['max_batch_size'],
        batch_wait_timeout_s=DEFAULTS['batch_wait_timeout_s'])
    async def _score(self, items: List[Tuple[str, np.ndarray]]) -> List[dict]:
        """One mixed batch: each image under its own task."""
        tasks = [task for task, _ in items]
        images = [img for _, img in items]
        start = time.perf_counter()
        results = await self._in_model_thread(self._forward, images, tasks)
        ms = 1e3 * (time.perf_counter() - start)
        size, num_tasks = len(items), len(set(tasks))
        m = self._metrics
        m['batches'] += 1
        m['images'] += size
        m['batch_sizes'][size] += 1
        m['tasks_per_batch'][num_tasks] += 1
        self._recent.append(dict(size=size, tasks=num_tasks, ms=round(ms, 2)))
        logger.info('LPT batch: %d images, %d tasks, %.1f ms', size, num_tasks,
                    ms)
        for result in results:
            result['batch'] = dict(size=size, tasks=num_tasks)
        return results

    def _forward(self, images: List[np.ndarray], tasks: List[str]) -> list:
        return self.registry.inferencer(images, tasks, batch_size=len(images))

    # ------------------------------------------------------------------ #
    # the HTTP API
    # ------------------------------------------------------------------ #
    @app.get('/healthz')
    async def healthz(self) -> dict:
        return dict(status='ok', tasks=self.registry.names())

    @app.get('/metrics')
    async def metrics(self) -> dict:
        m = self._metrics
        return dict(
            batches=m['batches'],
            images=m['images'],
            mean_batch_size=m['images'] / max(m['batches'], 1),
            batch_sizes={
                str(k): v
                for k, v in sorted(m['batch_sizes'].items())
            },
            tasks_per_batch={
                str(k): v
                for k, v in sorted(m['tasks_per_batch'].items())
            },
            errors={
                str(k): v
                for k, v in sorted(m['errors'].items())
            },
            recent_batches=list(self._recent),
            max_batch_size=self.max_batch_size,
            batch_wait_timeout_s=self.batch_wait_timeout_s)

    @app.get('/v1/tasks')
    async def list_tasks(self) -> dict:
        return dict(
            backbone_fingerprint=self.registry.fingerprint,
            tasks=[
                self.registry.info(n).to_json() for n in self.registry.names()
            ])

    @app.post('/v1/tasks')
    async def add_task(self, request: Request):
        try:
            try:
                body = await request.json()
            except ValueError:
                raise ServingError(
                    400, 'The body must be JSON: {"name": NAME, "path": '
                    'PROMPT_ONLY_FILE}.') from None
            if not isinstance(body, dict) or set(body) != {'name', 'path'}:
                raise ServingError(
                    400, 'The body must be a JSON object with exactly "name"'
                    f' and "path", got {str(body)[:200]}.')
            name = self.registry.check_new_name(body['name'])
            if name in self._removing:
                raise ServingError(
                    409, f'Task {name!r} is being removed; try again.')
            info = await self._in_model_thread(self.registry.add, name,
                                               body['path'])
        except ServingError as err:
            self._metrics['errors'][err.status] += 1
            return _error(err)
        logger.info('LPT server: added task %s from %s', name, info.file)
        return JSONResponse(status_code=201, content=info.to_json())

    @app.delete('/v1/tasks/{task}')
    async def delete_task(self, task: str):
        """Remove a task once the requests already accepted for it are
        answered; new ones get 404 meanwhile."""
        try:
            if task in self._removing:
                raise ServingError(404, f'Task {task!r} is being removed.')
            self.registry.info(task)
        except ServingError as err:
            self._metrics['errors'][err.status] += 1
            return _error(err)
        self._removing.add(task)
        try:
            waited = self._in_flight[task]
            while self._in_flight[task]:
                await asyncio.sleep(0.005)
            info = await self._in_model_thread(self.registry.remove, task)
        finally:
            self._removing.discard(task)
        logger.info(
            'LPT server: removed task %s (%d requests in flight '
            'finished first)', task, waited)
        return dict(removed=info.to_json(), finished_in_flight=waited)

    @app.post('/v1/tasks/{task}/predict')
    async def predict(self, task: str, request: Request, scores: bool = False):
        """An image (the body, or a multipart file) -> ``pred_label``,
        ``pred_score``, ``pred_class`` (``pred_scores`` with
        ``?scores=true``), as the task's own model gives them."""
        try:
            self._acquire(task)
            try:
                data = await self._read_upload(request)
                loop = asyncio.get_running_loop()
                img = await loop.run_in_executor(None, decode_image, data,
                                                 self.max_image_bytes,
                                                 self.max_image_pixels)
                result = await self._score((task, img))
            finally:
                self._release(task)
        except (ServingError, ImageRejected) as err:
            self._metrics['errors'][err.status] += 1
            return _error(err)
        except Exception as err:  # a bug: answer in JSON, keep serving
            logger.exception('LPT server: predict %s failed', task)
            self._metrics['errors'][500] += 1
            return _error(ServingError(500, f'{type(err).__name__}: {err}'))
        out = _jsonable(result, scores)
        out['batch'] = result['batch']
        return out


def build_app(config: str,
              tasks: Dict[str, str],
              num_cpus: float = 1,
              num_gpus: float = 0,
              max_ongoing_requests: Optional[int] = None,
              **kwargs):
    """The bound Ray Serve application (``serve.run(build_app(...))``).

    Args:
        config (str): See :class:`MultiTaskServer`.
        tasks (dict): ``{name: prompt_only_file}``.
        num_cpus (float): CPUs the replica reserves. Defaults to 1.
        num_gpus (float): GPUs it reserves. Defaults to 0.
        max_ongoing_requests (int, optional): Requests a replica takes at
            once. Defaults to None: 4 x ``max_batch_size`` (at least 64), so
            that batches can fill.
        **kwargs: The other arguments of :class:`MultiTaskServer`.
    """
    batch = kwargs.get('max_batch_size', DEFAULTS['max_batch_size'])
    return MultiTaskServer.options(
        max_ongoing_requests=max_ongoing_requests or max(64, 4 * batch),
        # a task that does not fit fails the same way every time
        max_constructor_retry_count=1,
        ray_actor_options=dict(num_cpus=num_cpus, num_gpus=num_gpus)).bind(
            config, dict(tasks), **kwargs)
