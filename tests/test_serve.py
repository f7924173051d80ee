"""The multi-task server (tools/deployment/serve.py on Ray Serve), started
once for this file in a subprocess on a free port, with the session's tiny
DigitsLT prompt-only files (conftest.digits_runs) and tasks derived from
them; each answer is compared with the task's own model in MMPretrain's
ImageClassificationInferencer."""
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT

pytest.importorskip('ray.serve')

CONFIG = REPO_ROOT / 'configs' / 'lpt' / 'phase2_digits.py'
MAX_BYTES = 100_000
MAX_PIXELS = 1_000_000


# --------------------------------------------------------------------------
# files: tasks (the session's runs and two derived from them), bad files
# --------------------------------------------------------------------------
def _derive(src, dst, change):
    ckpt = torch.load(src, map_location='cpu', weights_only=True)
    change(ckpt['state_dict'], ckpt['meta'])
    torch.save(ckpt, dst)
    return str(dst)


def _rename_classes(meta, prefix):
    names = [f'{prefix}{c}' for c in meta['dataset_meta']['classes']]
    meta['classes'] = names
    meta['dataset_meta'] = dict(meta['dataset_meta'], classes=names)


class _RunsCode:
    """Unpickling this runs code: ``touch`` of a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture(scope='module')
def files(digits_runs, tmp_path_factory):
    from lpt_mmpretrain.checkpoints import encode_text
    root = tmp_path_factory.mktemp('serve')

    def rolled_head(state, meta):
        state['head.fc.weight'] = state['head.fc.weight'].roll(1, 0)
        _rename_classes(meta, 'b')

    def negated_prompt(state, meta):
        state['backbone.prompt'] = -state['backbone.prompt']
        _rename_classes(meta, 'c')

    def foreign(state, meta):
        state['backbone.frozen_fingerprint'] = encode_text('0' * 64)

    phase1_model = torch.load(
        digits_runs.phase1_prompts, weights_only=True)['meta']['model']

    def wrong_phase(state, meta):  # phase-2 tensors, a phase-1 model
        meta['model'] = phase1_model

    marker = root / 'unpickled_code_ran'
    code = root / 'code.pth'
    torch.save(dict(meta=_RunsCode(marker)), code)
    junk = root / 'junk.pth'
    junk.write_bytes(b'not a checkpoint' * 10)
    p1, p2 = digits_runs.phase1_prompts, digits_runs.phase2_prompts
    return dict(
        p1=p1,
        p2=p2,
        p1b=_derive(p1, root / 'p1b_prompts.pth', rolled_head),
        p2c=_derive(p2, root / 'p2c_prompts.pth', negated_prompt),
        foreign=_derive(p1, root / 'foreign_prompts.pth', foreign),
        wrong_phase=_derive(p2, root / 'wrong_phase_prompts.pth', wrong_phase),
        full=digits_runs.phase1_full,
        code=str(code),
        marker=marker,
        junk=str(junk),
        missing=str(root / 'no_such_prompts.pth'))


def _encode(img, ext):
    import cv2
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """Digit images of several sizes as PNG and JPEG files: (path, bytes)."""
    import cv2
    from sklearn.datasets import load_digits
    root = tmp_path_factory.mktemp('serve_images')
    digits = load_digits().images
    out = []
    for i in range(8):
        gray = (digits[i] * 16).clip(0, 255).astype(np.uint8)
        img = cv2.resize(
            cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), (24 + 8 * i, 32 + 4 * i))
        img[:, :, i % 3] //= 2  # not gray: the channel order matters
        ext = '.png' if i % 2 else '.jpg'
        path = root / f'digit{i}{ext}'
        path.write_bytes(_encode(img, ext))
        out.append((str(path), path.read_bytes()))
    return out


@pytest.fixture(scope='module')
def own(files, images):
    """``own(task, i)``: task's own model's result on image i, by MMPretrain's
    ImageClassificationInferencer on the file, with CONFIG's test pipeline."""
    from mmengine.config import Config
    from mmpretrain.apis import ImageClassificationInferencer

    import lpt_mmpretrain  # noqa: F401
    from lpt_mmpretrain.apis.export import loadable_model_cfg
    test_dataloader = Config.fromfile(CONFIG).test_dataloader
    cache = {}

    def result(task, i):
        if task not in cache:
            meta = torch.load(files[task], weights_only=True)['meta']
            cfg = Config(
                dict(
                    model=loadable_model_cfg(meta['model']),
                    test_dataloader=test_dataloader))
            inferencer = ImageClassificationInferencer(
                cfg, pretrained=files[task], device='cpu')
            cache[task] = inferencer([p for p, _ in images])
        return cache[task][i]

    return result


# --------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------
def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Client:

    def __init__(self, port):
        self.base = f'http://127.0.0.1:{port}'

    def request(self, method, path, data=None, headers=None, timeout=60):
        req = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            body = err.read()
            try:
                return err.code, json.loads(body)
            except ValueError:
                return err.code, body.decode(errors='replace')

    def predict(self, task, data, scores=True, multipart=False):
        path = f'/v1/tasks/{task}/predict' + ('?scores=true' if scores else '')
        if multipart:
            boundary = uuid.uuid4().hex
            data = (f'--{boundary}\r\nContent-Disposition: form-data; '
                    'name="file"; filename="img"\r\nContent-Type: '
                    'application/octet-stream\r\n\r\n').encode() + data + (
                        f'\r\n--{boundary}--\r\n').encode()
            headers = {
                'Content-Type': f'multipart/form-data; boundary={boundary}'
            }
        else:
            headers = {'Content-Type': 'application/octet-stream'}
        return self.request('POST', path, data, headers)

    def post_json(self, path, obj):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        return self.request('POST', path, data,
                            {'Content-Type': 'application/json'})


@pytest.fixture(scope='module')
def server(files, tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp('serve_log') / 'server.log'
    cmd = [
        sys.executable, REPO_ROOT / 'tools' / 'deployment' / 'serve.py',
        CONFIG, '--tasks', f'p1={files["p1"]}', f'p2={files["p2"]}',
        f'p1b={files["p1b"]}', '--port',
        str(port), '--max-batch-size', '8', '--batch-wait-timeout-s', '0.05',
        '--max-image-bytes',
        str(MAX_BYTES), '--max-image-pixels',
        str(MAX_PIXELS)
    ]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(REPO_ROOT), os.environ.get('PYTHONPATH', '')]),
        OMP_NUM_THREADS='1',
        PYTHONUNBUFFERED='1')
    with open(log, 'w') as out:
        proc = subprocess.Popen([str(c) for c in cmd],
                                cwd=REPO_ROOT,
                                env=env,
                                stdout=out,
                                stderr=subprocess.STDOUT,
                                start_new_session=True)
    client = Client(port)
    deadline = time.monotonic() + 150
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f'the server exited ({proc.returncode}):\n'
                            f'{log.read_text()[-6000:]}')
            if time.monotonic() > deadline:
                pytest.fail('the server did not answer /healthz in 150 s:\n'
                            f'{log.read_text()[-6000:]}')
            try:
                if client.request('GET', '/healthz', timeout=2)[0] == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        client.log = log
        yield client
    finally:
        proc.send_signal(signal.SIGINT)  # the tool shuts Ray down
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.returncode == 0, log.read_text()[-4000:]


def _check_equal(answer, want):
    assert answer['pred_label'] == want['pred_label']
    assert answer['pred_class'] == want['pred_class']
    assert answer['pred_score'] == pytest.approx(want['pred_score'], abs=1e-5)
    if 'pred_scores' in answer:
        np.testing.assert_allclose(
            answer['pred_scores'], want['pred_scores'], atol=1e-5, rtol=0)


# --------------------------------------------------------------------------
# Before the tests that start the server (the fixture starts it for the
# first test that asks): its two short runs of the tool import torch, and
# beside a running server they would add 0.6 GB to the suite's peak.
def test_serve_tool_refuses_bad_arguments(files):
    from conftest import run_python
    tool = REPO_ROOT / 'tools' / 'deployment' / 'serve.py'
    proc = run_python(tool, CONFIG, '--tasks', 'p1', check=False)
    assert proc.returncode == 2 and 'NAME=PROMPT_FILE' in proc.stdout
    proc = run_python(
        tool, CONFIG, '--tasks', f'p1={files["missing"]}', check=False)
    assert proc.returncode == 1
    assert 'prompt-only file does not exist' in proc.stdout


def test_concurrent_tasks_mixed_batches_own_answers(server, images, own):
    jobs = [(task, i, (k % 3 == 0)) for k, (task, i) in enumerate(
        (t, i) for i in range(len(images)) for t in ('p1', 'p2', 'p1b'))]
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(
                lambda job: server.predict(
                    job[0], images[job[1]][1], multipart=job[2]), jobs))
    for (task, i, _), (status, answer) in zip(jobs, answers):
        assert status == 200, answer
        assert answer['task'] == task
        _check_equal(answer, own(task, i))
    # The tasks give different answers: the comparison tells them apart.
    assert any(
        own('p1', i)['pred_label'] != own('p1b', i)['pred_label']
        for i in range(len(images)))
    # Requests of different tasks ran in one batch.
    assert max(a['batch']['tasks'] for _, a in answers) > 1
    assert max(a['batch']['size'] for _, a in answers) > 1
    status, metrics = server.request('GET', '/metrics')
    assert status == 200
    assert metrics['max_batch_size'] == 8
    assert metrics['images'] >= len(jobs)
    assert sum(int(k) * v for k, v in metrics['batch_sizes'].items()) \
        == metrics['images']
    assert any(int(k) > 1 for k in metrics['tasks_per_batch'])
    assert 'LPT batch:' in server.log.read_text()
    # Without ?scores=true: no pred_scores.
    status, answer = server.predict('p2', images[0][1], scores=False)
    assert status == 200 and 'pred_scores' not in answer
    _check_equal(answer, own('p2', 0))


def test_list_tasks(server, files):
    status, listing = server.request('GET', '/v1/tasks')
    assert status == 200
    tasks = {t['name']: t for t in listing['tasks']}
    assert {'p1', 'p2', 'p1b'} <= set(tasks)
    assert tasks['p1']['phase'] == 1 and tasks['p2']['phase'] == 2
    assert tasks['p1b']['classes'][:2] == ['b0', 'b1']
    assert tasks['p2']['num_classes'] == 10
    assert tasks['p2']['file'] == os.path.abspath(files['p2'])
    recorded = torch.load(
        files['p1'],
        weights_only=True)['state_dict']['backbone.frozen_fingerprint']
    assert listing['backbone_fingerprint'] == bytes(recorded.tolist()).decode()
    assert {t['backbone_fingerprint']
            for t in tasks.values()} == {listing['backbone_fingerprint']}


def test_add_and_remove_tasks_while_serving(server, files, images, own):
    stop = threading.Event()
    background = []

    def keep_asking():  # another task's requests run all along
        i = 0
        while not stop.is_set():
            status, answer = server.predict('p2', images[i % 8][1])
            background.append((i % 8, status, answer))
            i += 1

    thread = threading.Thread(target=keep_asking)
    thread.start()
    try:
        status, info = server.post_json('/v1/tasks',
                                        dict(name='p2c', path=files['p2c']))
        assert status == 201, info
        assert info['phase'] == 2 and info['classes'][0] == 'c0'
        for i in (0, 3):
            status, answer = server.predict('p2c', images[i][1])
            assert status == 200, answer
            _check_equal(answer, own('p2c', i))
        # Requests for p1b in flight when it is removed are answered.
        with ThreadPoolExecutor(8) as pool:
            sent = [
                pool.submit(server.predict, 'p1b', images[i][1])
                for i in range(8)
            ]
            time.sleep(0.03)
            status, removed = server.request('DELETE', '/v1/tasks/p1b')
            results = [f.result() for f in sent]
        assert status == 200, removed
        assert removed['removed']['name'] == 'p1b'
        done = [(i, a) for i, (s, a) in enumerate(results) if s == 200]
        assert all(s in (200, 404) for s, _ in results), results
        assert len(done) >= removed['finished_in_flight']
        for i, answer in done:
            _check_equal(answer, own('p1b', i))
        status, answer = server.predict('p1b', images[0][1])
        assert status == 404 and 'p1b' in answer['error']
        names = {
            t['name']
            for t in server.request('GET', '/v1/tasks')[1]['tasks']
        }
        assert 'p1b' not in names and 'p2c' in names
    finally:
        stop.set()
        thread.join()
    assert background
    for i, status, answer in background:
        assert status == 200, answer
        _check_equal(answer, own('p2', i))


def _png_bytes(img):
    return _encode(img, '.png')


@pytest.mark.parametrize('case', [
    'unknown task', 'not an image', 'empty', 'truncated png', 'truncated jpeg',
    'too many bytes', 'too many pixels', 'multipart without file'
])
def test_bad_uploads(server, images, case):
    png = next(b for p, b in images if p.endswith('.png'))
    jpg = next(b for p, b in images if p.endswith('.jpg'))
    task, data, multipart = 'p1', png, case == 'truncated jpeg'
    if case == 'unknown task':
        task = 'no_such_task'
    elif case == 'not an image':
        data = b'GIF? no: plain text ' * 20
    elif case == 'empty':
        data = b''
    elif case == 'truncated png':
        data = png[:len(png) // 2]
    elif case == 'truncated jpeg':
        data = jpg[:len(jpg) // 2]
    elif case == 'too many bytes':
        rng = np.random.default_rng(0)
        data = _png_bytes(rng.integers(0, 256, (200, 200, 3), np.uint8))
        assert len(data) > MAX_BYTES
    elif case == 'too many pixels':  # compresses to a few kB
        data = _png_bytes(np.zeros((1100, 1000, 3), np.uint8))
        assert len(data) < MAX_BYTES
    if case != 'multipart without file':
        status, answer = server.predict(task, data, multipart=multipart)
    else:
        status, answer = server.request(
            'POST', '/v1/tasks/p1/predict', b'--x\r\nContent-Disposition: '
            b'form-data; name="a"\r\n\r\n1\r\n--x--\r\n',
            {'Content-Type': 'multipart/form-data; boundary=x'})
    want = {
        'unknown task': (404, 'no_such_task'),
        'not an image': (400, 'not an image'),
        'empty': (400, 'no image'),
        'truncated png': (400, 'truncated'),
        'truncated jpeg': (400, 'truncated'),
        'too many bytes': (413, str(MAX_BYTES)),
        'too many pixels': (413, str(MAX_PIXELS)),
        'multipart without file': (400, 'holds no file'),
    }[case]
    assert status == want[0], answer
    assert want[1] in answer['error'], answer
    # ... and the server keeps serving.
    assert server.predict('p1', png)[0] == 200


@pytest.mark.parametrize('case', [
    'missing file', 'not a checkpoint', 'pickled code', 'full checkpoint',
    'foreign backbone', 'wrong phase', 'name taken', 'bad name', 'not json',
    'no path'
])
def test_bad_task_registrations(server, files, case):
    body = dict(name=f'new_{case.replace(" ", "_")}', path=None)
    want = {
        'missing file': (400, 'does not exist', 'missing'),
        'not a checkpoint': (400, 'not a checkpoint file', 'junk'),
        'pickled code': (400, 'Refused to load', 'code'),
        'full checkpoint': (409, 'not a prompt-only checkpoint', 'full'),
        'foreign backbone': (409, 'trained on another backbone', 'foreign'),
        'wrong phase': (409, 'phase-2 checkpoint', 'wrong_phase'),
        'name taken': (409, 'exists already', 'p1'),
        'bad name': (400, 'not allowed', 'p1'),
        'not json': (400, 'must be JSON', None),
        'no path': (400, 'exactly "name" and "path"', None),
    }[case]
    if want[2] is not None:
        body['path'] = files[want[2]]
    if case == 'name taken':
        body['name'] = 'p2'
    elif case == 'bad name':
        body['name'] = '../etc'
    elif case == 'no path':
        del body['path']
    status, answer = server.post_json(
        '/v1/tasks', b'{"name": ' if case == 'not json' else body)
    assert status == want[0], answer
    assert want[1] in answer['error'], answer
    if case == 'foreign backbone':
        assert '0' * 64 in answer['error']
    if case == 'pickled code':
        assert not files['marker'].exists()
    names = [t['name'] for t in server.request('GET', '/v1/tasks')[1]['tasks']]
    assert body['name'] not in names or case == 'name taken'
    assert server.request('GET', '/healthz')[0] == 200


def test_decode_image_equals_mmcv_imread(images):
    # The server's decoder gives the pixels ImageClassificationInferencer
    # reads from the file.
    from mmcv.image import imread

    from lpt_mmpretrain.serving import decode_image
    for path, data in images:
        np.testing.assert_array_equal(
            decode_image(data, MAX_BYTES, MAX_PIXELS), imread(path))
    from PIL import Image
    buf = io.BytesIO()
    Image.new('RGB', (5, 4), (10, 20, 30)).save(buf, format='PNG')
    img = decode_image(buf.getvalue(), MAX_BYTES, MAX_PIXELS)
    assert img.shape == (4, 5, 3) and tuple(img[0, 0]) == (30, 20, 10)
