"""The multi-task HTTP server under load: requests/s and latency
percentiles at C concurrent clients spread over N tasks, against the same
requests one by one to task 0's own model (MMPretrain's
``ImageClassificationInferencer``). See ``docs/serving.md``."""
import http.client
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np
from mmengine.config import Config

from .multitask import make_task_files

__all__ = ['measure_server', 'serve_rows']

REPO_ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
SERVE_TOOL = osp.join(REPO_ROOT, 'tools', 'deployment', 'serve.py')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _png_images(num: int, img_size: Tuple[int, int], seed: int) -> list:
    import cv2
    rng = np.random.default_rng(seed)
    return [
        cv2.imencode('.png', rng.integers(0, 256, (*img_size, 3),
                                          np.uint8))[1].tobytes()
        for _ in range(num)
    ]


def _percentiles(latencies: Sequence[float]) -> dict:
    ms = 1e3 * np.asarray(latencies)
    return dict(
        p50_ms=float(np.percentile(ms, 50)),
        p95_ms=float(np.percentile(ms, 95)))


def _load(port: int, images: list, num_tasks: int, clients: int,
          requests: int) -> dict:
    """``requests`` requests (request j: task j % N, image j) from
    ``clients`` threads, each on a keep-alive connection."""
    latencies: List[float] = []
    batch_sizes: List[int] = []
    errors: List[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def client():
        conn = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
        while True:
            with lock:
                j = next(counter, None)
            if j is None:
                break
            start = time.perf_counter()
            conn.request('POST', f'/v1/tasks/task{j % num_tasks}/predict',
                         images[j % len(images)],
                         {'Content-Type': 'application/octet-stream'})
            resp = conn.getresponse()
            body = resp.read()
            elapsed = time.perf_counter() - start
            with lock:
                if resp.status != 200:
                    errors.append(body[:200].decode(errors='replace'))
                else:
                    import json
                    latencies.append(elapsed)
                    batch_sizes.append(json.loads(body)['batch']['size'])
        conn.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f'{len(errors)} requests failed, e.g. {errors[0]}')
    return dict(
        requests_per_s=requests / wall,
        mean_batch=float(np.mean(batch_sizes)),
        **_percentiles(latencies))


def _own_model(config: str, task_file: str, images: list,
               requests: int) -> dict:
    """The same requests one by one to task 0's own model: decode the
    bytes, ``ImageClassificationInferencer`` on the array."""
    from mmcv.image import imfrombytes
    from mmpretrain.apis import ImageClassificationInferencer
    inferencer = ImageClassificationInferencer(
        config, pretrained=task_file, device='cpu')
    for data in images[:5]:  # warm-up
        inferencer(imfrombytes(data))
    latencies = []
    start = time.perf_counter()
    for j in range(requests):
        t0 = time.perf_counter()
        inferencer(imfrombytes(images[j % len(images)]))
        latencies.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    return dict(requests_per_s=requests / wall, **_percentiles(latencies))


def measure_server(setup: dict, config: str, tasks: Sequence[int],
                   clients: Sequence[int], requests: int, max_batch_size: int,
                   batch_wait_timeout_s: float) -> Dict[str, dict]:
    """Start ``tools/deployment/serve.py`` with ``max(tasks)`` random tasks
    of CONFIG's phase-2 model, then time each (tasks, clients) load and
    task 0's own model; the server's process is ended (Ray shut down)."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_cfg, files = make_task_files(setup['phase2_model'], max(tasks),
                                           tmp, setup['seed'])
        serve_cfg = osp.join(tmp, 'serve_config.py')
        Config(
            dict(
                model=model_cfg,
                test_dataloader=Config.fromfile(config).test_dataloader)).dump(
                    serve_cfg)
        images = _png_images(64, setup['img_size'], setup['seed'])
        results['own model, one by one'] = _own_model(serve_cfg, files[0],
                                                      images, requests)
        port = _free_port()
        cmd = [
            sys.executable, SERVE_TOOL, serve_cfg, '--tasks',
            *[f'task{t}={f}' for t, f in enumerate(files)], '--port',
            str(port), '--max-batch-size',
            str(max_batch_size), '--batch-wait-timeout-s',
            str(batch_wait_timeout_s)
        ]
        if setup['threads']:
            cmd += ['--threads', str(setup['threads'])]
        log = open(osp.join(tmp, 'server.log'), 'w')
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(os.environ, PYTHONPATH=REPO_ROOT))
        try:
            _wait_ready(proc, port, osp.join(tmp, 'server.log'))
            _load(port, images, max(tasks), max(clients), 2 * max_batch_size)
            for num in tasks:
                for c in clients:
                    print(
                        f'benchmark: server, {num} tasks, {c} clients ...',
                        file=sys.stderr,
                        flush=True)
                    results[f'server, {num} tasks, {c} clients'] = _load(
                        port, images, num, c, requests)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            log.close()
    return results


def _wait_ready(proc, port: int, log: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log) as f:
                raise RuntimeError(f'the server exited:\n{f.read()[-4000:]}')
        try:
            conn = http.client.HTTPConnection('127.0.0.1', port, timeout=2)
            conn.request('GET', '/healthz')
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f'the server did not answer in {timeout} s')


def serve_rows(results: Dict[str, dict]) -> List[tuple]:
    """``(key, metric, value, unit)`` rows of :func:`measure_server`."""
    rows = []
    for label, r in results.items():
        key = label.replace(', ', '_').replace(' ', '_')
        rows += [
            (f'{key}_req_s', f'{label}: throughput', r['requests_per_s'],
             'req/s'),
            (f'{key}_p50_ms', f'{label}: latency p50', r['p50_ms'], 'ms'),
            (f'{key}_p95_ms', f'{label}: latency p95', r['p95_ms'], 'ms'),
        ]
        if 'mean_batch' in r:
            rows.append((f'{key}_mean_batch', f'{label}: mean batch size',
                         r['mean_batch'], 'images'))
    return rows
