"""tools/misc/process_memory.py (lpt_tools.process_memory): the suite's
memory is the summed PSS of a process and its descendants."""
import subprocess
import sys
import textwrap
import time

from conftest import REPO_ROOT

from lpt_tools.process_memory import descendants, run_sampled, tree_pss

# A child that holds 300 MiB (every page touched) for 2 s.
CHILD = ('import time; b = bytearray(300 * 2**20); '
         'b[::4096] = b"x" * len(b[::4096]); time.sleep(2)')
# A parent that starts that child, then exits 3.
PARENT = textwrap.dedent(f'''
    import subprocess, sys
    child = subprocess.Popen([sys.executable, '-c', {CHILD!r}])
    sys.exit(child.wait() + 3)
''')


def test_tree_pss_finds_the_children():
    sleeper = 'import time; time.sleep(3)'
    proc = subprocess.Popen([
        sys.executable, '-c',
        f'import subprocess, sys; subprocess.run([sys.executable, "-c", '
        f'{sleeper!r}])'
    ])
    try:
        for _ in range(100):
            pids = descendants(proc.pid)
            if len(pids) == 2:
                break
            time.sleep(0.05)
        assert pids[0] == proc.pid and len(pids) == 2
        procs = tree_pss(proc.pid)
        assert {p.pid for p in procs} == set(pids)
        assert any(sleeper in p.cmd for p in procs)
    finally:
        proc.kill()
        proc.wait()


def test_run_sampled_peak_counts_the_child():
    run = run_sampled([sys.executable, '-c', PARENT], interval_s=0.1)
    assert run.returncode == 3
    assert run.peak_kib > 300 * 1024
    assert 'bytearray' in run.peak_procs[0].cmd
    assert run.largest_proc.pss_kib > 300 * 1024
    assert run.series[-1][1] == 0  # the last sample: all exited


def test_cli_reports_and_passes_the_exit_code(tmp_path):
    series = tmp_path / 'series.txt'
    proc = subprocess.run([
        sys.executable, REPO_ROOT / 'tools' / 'misc' / 'process_memory.py',
        '--interval', '0.1', '--series', series, '--', sys.executable, '-c',
        PARENT
    ],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 3, proc.stderr
    assert 'summed PSS: peak 0.3' in proc.stdout, proc.stdout
    assert 'bytearray' in proc.stdout
    assert len(series.read_text().splitlines()) > 5
    bad = subprocess.run(
        [sys.executable, REPO_ROOT / 'tools' / 'misc' / 'process_memory.py'],
        capture_output=True,
        text=True)
    assert bad.returncode == 2 and 'give the command' in bad.stderr
