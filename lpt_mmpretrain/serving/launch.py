"""Start the multi-task server on Ray, serve until a signal, shut down.

On a machine of its own (no ``address``) it starts a small local Ray
instance (``num_cpus`` CPUs, no dashboard, a small object store) and shuts
it down on exit; with ``address`` it joins a running Ray cluster and on
exit deletes only its own application.
"""
import os
import os.path as osp
import signal
import threading
from typing import Dict, Optional

__all__ = ['APP_NAME', 'check_task_files', 'serve_forever']

APP_NAME = 'lpt'


def check_task_files(config: str, tasks: Dict[str, str]) -> None:
    """Fail before Ray starts on what can be seen from here: a missing
    config or task file, no task at all."""
    if not osp.isfile(config):
        raise FileNotFoundError(f'Config file {config} does not exist.')
    if not tasks:
        raise ValueError('Give at least one task: --tasks NAME=PROMPT_FILE.')
    for name, path in tasks.items():
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'--tasks {name}={path}: the prompt-only file does not '
                'exist (training writes it next to each checkpoint, '
                '`*_prompts.pth`).')


def serve_forever(config: str,
                  tasks: Dict[str, str],
                  address: Optional[str] = None,
                  host: str = '127.0.0.1',
                  port: int = 8000,
                  num_cpus: int = 1,
                  ready: Optional[threading.Event] = None,
                  stop: Optional[threading.Event] = None,
                  **server_kwargs) -> None:
    """Run the server until SIGINT / SIGTERM (or ``stop`` is set).

    Args:
        config (str): See :class:`~.app.MultiTaskServer`.
        tasks (dict): ``{name: prompt_only_file}``.
        address (str, optional): A Ray cluster (``ray://...`` or
            ``HOST:PORT``; ``'auto'``: the one ``ray start`` runs here).
            Defaults to None: a local Ray instance of its own.
        host (str): Where the HTTP proxy listens. Defaults to '127.0.0.1'.
        port (int): Defaults to 8000.
        num_cpus (int): CPUs of the local instance (the replica reserves
            one). Defaults to 1.
        ready (threading.Event, optional): Set once the server answers.
        stop (threading.Event, optional): Set it to stop the server.
        **server_kwargs: :func:`~.app.build_app`'s other arguments.
    """
    check_task_files(config, tasks)
    os.environ.setdefault('RAY_USAGE_STATS_ENABLED', '0')
    import ray
    from ray import serve

    from .app import build_app
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    local = address is None
    ray.init(
        address=address,
        num_cpus=num_cpus if local else None,
        include_dashboard=False,
        object_store_memory=100 * 2**20 if local else None,
        configure_logging=False)
    try:
        serve.start(http_options=dict(host=host, port=port))
        try:
            serve.run(
                build_app(config, tasks, **server_kwargs),
                name=APP_NAME,
                route_prefix='/')
        except RuntimeError as err:  # the replica's own error is logged
            raise RuntimeError(
                f'The server did not start ({err}). The replica\'s error is '
                'in the log above (e.g. "--tasks NAME=FILE: ... does not fit '
                'this server: ..."): fix that task or leave it out.') from None
        print(
            f'LPT multi-task server ready at http://{host}:{port} '
            f'(tasks: {", ".join(tasks)}); Ctrl-C stops it.',
            flush=True)
        if ready is not None:
            ready.set()
        stop.wait()
    finally:
        print('LPT multi-task server: shutting down.', flush=True)
        try:
            if local:
                serve.shutdown()
            else:
                serve.delete(APP_NAME)
        finally:
            ray.shutdown()
