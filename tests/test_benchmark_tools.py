import importlib.util
import json
import os.path as osp
import subprocess
import sys

import pytest
from conftest import on_meta
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BENCHMARK = osp.join(ROOT, 'tools', 'benchmark.py')
COUNT_PARAMS = osp.join(ROOT, 'tools', 'analysis_tools', 'count_params.py')
PHASE1_DIGITS = osp.join(ROOT, 'configs', 'lpt', 'phase1_digits.py')
PHASE2_DIGITS = osp.join(ROOT, 'configs', 'lpt', 'phase2_digits.py')
PHASE2_PLACES = osp.join(ROOT, 'configs', 'lpt', 'phase2_places.py')


def load_script(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def bench_script():
    # not named `benchmark`: that is pytest-benchmark's fixture
    return load_script(BENCHMARK, 'lpt_benchmark')


@pytest.fixture(scope='module')
def count_params():
    return load_script(COUNT_PARAMS, 'lpt_count_params')


def run_script(*args):
    proc = subprocess.run([sys.executable, *args],
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def parse_table(text, columns):
    """Rows of the markdown table with this header, as lists of cells."""
    lines = text.splitlines()
    header = '| ' + ' | '.join(columns) + ' |'
    start = lines.index(header)
    assert lines[start + 1] == '|' + '---|' * len(columns)
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith('|'):
            break
        cells = [c.strip() for c in line.strip('|').split('|')]
        assert len(cells) == len(columns), line
        rows.append(cells)
    return rows


@pytest.mark.slow  # a benchmark process
def test_benchmark_digits(bench_script, tmp_path):
    out = tmp_path / 'bench.json'
    stdout = run_script(BENCHMARK, PHASE2_DIGITS, '--device', 'cpu',
                        '--batch-size', '4', '--infer-batch-size', '6',
                        '--iters', '2', '--warmup', '1', '--threads', '1',
                        '--json', str(out))
    rows = parse_table(stdout, ['metric', 'value', 'unit'])
    figures = json.loads(out.read_text())
    units = figures['units']
    values = figures['figures']
    # Every documented key, in order, once; the table shows them in order.
    keys = list(values)
    expected_keys = [
        f'phase{p}_{what}' for p in (1, 2)
        for what in ('params_total', 'params_trainable', 'trainable_pct')
    ] + ['ckpt_prompt_mib', 'ckpt_full_mib', 'ckpt_ratio_pct'] + [
        f'{run[0]}_{what}' for run in bench_script.RUNS
        for what in ('img_s', 'peak_mib', 'extra_mib')
    ] + [
        f'phase2_{mode}_speedup{suffix}' for mode in ('train', 'infer')
        for suffix in ('', '_expected')
    ]
    assert keys == expected_keys
    assert len(rows) == len(keys)
    for (metric, text, unit), key in zip(rows, keys):
        assert unit == units[key], metric
        assert float(text) == pytest.approx(values[key], rel=1e-2, abs=5e-3)
        assert values[key] >= 0

    # Parameter counts agree with the models (tiny ViT: 6 blocks of 64).
    assert values['phase1_params_trainable'] == 6 * 5 * 64 + 10 * 64
    assert values['phase2_params_trainable'] == (10 * 3 * 5 * 64 + 10 * 64 +
                                                 10 * 64)
    assert (values['phase2_params_total'] -
            values['phase1_params_total'] == 10 * 3 * 5 * 64 + 10 * 64)
    assert values['phase2_trainable_pct'] == pytest.approx(
        100 * values['phase2_params_trainable'] /
        values['phase2_params_total'])
    sizes = figures['bytes']
    assert 0 < sizes['ckpt_prompt'] < sizes['ckpt_full']
    # Float32 tensors: the full file holds at least the parameters.
    assert sizes['ckpt_full'] > 4 * values['phase2_params_total']
    assert sizes['ckpt_prompt'] > 4 * (
        values['phase2_params_trainable'] + 6 * 5 * 64)
    for run, _, mode, _ in bench_script.RUNS:
        assert len(figures['runs'][run]['times_s']) == 2
        assert figures['runs'][run]['images'] == (8 if mode == 'train' else 6)
        assert values[f'{run}_img_s'] > 0
        assert values[f'{run}_peak_mib'] >= values[f'{run}_extra_mib'] > 0
    assert figures['geometry'] == dict(
        num_layers=6,
        share_blocks=3,
        embed_dims=64,
        ffn_dims=128,
        tokens=1 + 16,
        prompt_length=5,
        group_prompt_length=5,
        num_classes=10)
    assert values['phase2_infer_speedup_expected'] > 1
    assert values['phase2_train_speedup_expected'] > 1


def test_expected_speedups_equal_blocks(bench_script):
    # No group prompt: all blocks cost the same, so the ratios are the block
    # counts: 2L / (2L - k) and (2L + (L - k)) / (2L - k + (L - k)).
    geometry = dict(
        num_layers=12,
        share_blocks=6,
        embed_dims=768,
        ffn_dims=3072,
        tokens=197,
        prompt_length=10,
        group_prompt_length=0)
    ratios = bench_script.expected_speedups(geometry)
    assert ratios['infer'] == pytest.approx(24 / 18)
    assert ratios['train'] == pytest.approx(30 / 24)
    assert bench_script.expected_speedups(
        geometry, beta=2.)['train'] == pytest.approx(36 / 30)
    # Longer sequences in the group-prompt blocks weigh the shared part less.
    with_group = bench_script.expected_speedups(
        dict(geometry, group_prompt_length=10))
    assert 1 < with_group['infer'] < 24 / 18


def test_phase1_derived_from_phase2(bench_script):
    phase2 = bench_script.phase2_model_cfg(
        Config.fromfile(PHASE2_DIGITS), PHASE2_DIGITS)
    assert phase2['allow_no_phase1'] and phase2['phase1_checkpoint'] is None
    phase1 = bench_script.phase1_model_cfg(phase2)
    assert phase1['type'] == 'LPTClassifier' and 'neck' not in phase1
    assert not set(bench_script.PHASE2_ONLY_KEYS) & set(phase1)
    assert phase1['backbone'] == phase2['backbone']
    assert phase1['head'] == phase2['head']
    assert bench_script.phase1_model_cfg(
        phase2, PHASE1_DIGITS) == Config.fromfile(PHASE1_DIGITS).model
    with pytest.raises(ValueError, match='phase-2'):
        bench_script.phase2_model_cfg(
            Config.fromfile(PHASE1_DIGITS), PHASE1_DIGITS)
    with pytest.raises(ValueError, match='phase-1 config'):
        bench_script.phase1_model_cfg(phase2, PHASE2_DIGITS)


def test_synthetic_class_counts(bench_script):
    counts = bench_script.synthetic_class_counts(100)
    assert counts[0] == 500 and counts[-1] == 5 and len(counts) == 100
    assert counts == sorted(counts, reverse=True)
    assert bench_script.synthetic_class_counts(1) == [500]
    assert min(bench_script.synthetic_class_counts(5000)) >= 1


def test_benchmark_rejects_bad_args(bench_script):
    with pytest.raises(SystemExit):
        bench_script.parse_args([PHASE2_DIGITS, '--iters', '0'])
    with pytest.raises(SystemExit):
        bench_script.parse_args([PHASE2_DIGITS, '--img-size', '1', '2', '3'])
    with pytest.raises(SystemExit):
        bench_script.parse_args([PHASE2_DIGITS, '--threads', '0'])


def count_table(stdout):
    rows = parse_table(stdout, ['component', 'trainable', 'frozen', 'total'])
    return {
        name: tuple(int(c.replace(',', '')) for c in cells)
        for name, *cells in rows
    }


@pytest.mark.slow  # a benchmark process
def test_count_params_digits_script():
    stdout = run_script(COUNT_PARAMS, PHASE2_DIGITS)
    table = count_table(stdout)
    assert table['backbone.prompt (shared prompt)'] == (0, 6 * 5 * 64,
                                                        6 * 5 * 64)
    assert table['neck.prompt (prompt pool)'] == (10 * 3 * 5 * 64, 0,
                                                  10 * 3 * 5 * 64)
    assert table['neck.key (keys)'] == (640, 0, 640)
    assert table['head'] == (640, 0, 640)
    assert table['other'] == (0, 0, 0)
    total = table.pop('total')
    assert total == tuple(map(sum, zip(*table.values())))
    assert f'= {100 * total[0] / total[2]:.3f} %' in stdout


def test_count_params_places_vit_b(count_params, capsys):
    with on_meta():  # the counts need no weights
        count_params.main([PHASE2_PLACES])
    table = count_table(capsys.readouterr().out)
    # docs/method.md: shared prompt 92,160 (frozen in phase 2), pool 921,600,
    # keys 15,360, head 768 x 365.
    assert table['backbone.prompt (shared prompt)'] == (0, 92160, 92160)
    assert table['neck.prompt (prompt pool)'] == (921600, 0, 921600)
    assert table['neck.key (keys)'] == (15360, 0, 15360)
    assert table['head'] == (280320, 0, 280320)
    trainable, frozen, _ = table['backbone (pretrained weights)']
    assert trainable == 0 and frozen > 85_000_000


@pytest.mark.slow  # a benchmark process
def test_benchmark_multitask_mode(tmp_path):
    out = tmp_path / 'multitask.json'
    stdout = run_script(BENCHMARK, PHASE2_DIGITS, '--mode', 'multitask',
                        '--device', 'cpu', '--tasks', '1', '2',
                        '--infer-batch-size', '4', '--iters', '2', '--warmup',
                        '0', '--threads', '1', '--json', str(out))
    rows = parse_table(stdout, ['metric', 'value', 'unit'])
    figures = json.loads(out.read_text())
    values = figures['figures']
    # shared: 3 memory rows, 2 build rows, 3 steps x (median, quartiles), 2
    # ratios x (median, quartiles); separate: 3 memory rows, 2 build rows,
    # 3 throughputs.
    assert len(rows) == len(values) == 2 * (5 + 9 + 6) + 2 * (5 + 3)
    for n in (1, 2):
        for serving in ('shared', 'separate'):
            key = f'n{n}_{serving}'
            assert values[f'{key}_img_s_p25'] <= values[f'{key}_img_s'] <= \
                values[f'{key}_img_s_p75']
            assert values[f'{key}_peak_mib'] > 0
        for step in ('single', 'own'):
            assert values[f'n{n}_shared_{step}_img_s'] > 0
            assert values[f'n{n}_shared_ratio_{step}_p25'] <= values[
                f'n{n}_shared_ratio_{step}'] <= values[
                    f'n{n}_shared_ratio_{step}_p75']
    # Interleaved rounds: one time per round and step.
    run = figures['runs']['2_shared']
    assert len(run['times_s']) == len(run['own_times_s']) == 2
    # One backbone: a second task adds its prompts, pool and head only.
    task = values['n2_shared_weights_mib'] - values['n1_shared_weights_mib']
    full = values['n1_separate_weights_mib']
    assert 0 < task < full / 5
    assert values['n2_separate_weights_mib'] == pytest.approx(2 * full)
    assert values['n1_shared_weights_mib'] == pytest.approx(full, rel=0.05)
    # A second task builds no backbone module: far fewer log lines than one
    # full model's build and random init.
    added = (
        values['n2_shared_build_log_lines'] -
        values['n1_shared_build_log_lines'])
    assert 0 < added < values['n1_separate_build_log_lines'] / 15
    assert values['n2_shared_build_s'] > 0


@pytest.mark.slow  # a benchmark process
def test_benchmark_deploy_mode_eager(tmp_path):
    out = tmp_path / 'deploy.json'
    stdout = run_script(BENCHMARK, PHASE2_DIGITS, '--mode', 'deploy',
                        '--device', 'cpu', '--backends', 'eager',
                        '--batch-sizes', '1', '3', '--min-run-time', '0.1',
                        '--rounds', '2', '--threads', '1', '--json', str(out))
    rows = parse_table(stdout, ['metric', 'value', 'unit'])
    figures = json.loads(out.read_text())
    values = figures['figures']
    assert len(rows) == len(values) == 2 * 2 * 6  # phases x batches x rows
    for phase in (1, 2):
        for batch in (1, 3):
            key = f'eager_p{phase}_b{batch}'
            assert values[f'{key}_latency_ms'] > 0
            assert values[f'{key}_iqr_ms'] >= 0
            assert values[f'{key}_img_s'] == pytest.approx(
                1e3 * batch / values[f'{key}_latency_ms'], rel=1e-6)
            assert values[f'{key}_max_abs_diff'] == 0
            assert len(figures['runs'][key]['round_medians_s']) == 2
    assert 'load_average' in figures['meta']


def test_deploy_speedup_rows():
    from lpt_tools.benchmark.deploy import deploy_rows
    run = dict(
        median_s=0.1,
        iqr_s=0.01,
        prepare_s=0.,
        first_call_s=0.1,
        max_abs_diff=0.)
    rows = {
        key: value
        for key, _, value, _ in deploy_rows({
            ('eager', 2, 1):
            dict(run, round_medians_s=[0.2, 0.4, 0.3]),
            ('onnxruntime', 2, 1):
            dict(run, round_medians_s=[0.1, 0.1, 0.3]),
        })
    }
    # Per round: 2, 4, 1 -> median 2, range 1 .. 4.
    assert rows['onnxruntime_p2_b1_speedup'] == pytest.approx(2.)
    assert rows['onnxruntime_p2_b1_speedup_min'] == pytest.approx(1.)
    assert rows['onnxruntime_p2_b1_speedup_max'] == pytest.approx(4.)
    assert 'eager_p2_b1_speedup' not in rows


def test_measure_helpers():
    import torch.nn as nn

    from lpt_tools.benchmark.measure import tensor_bytes
    from lpt_tools.params import count_params
    shared = nn.Linear(3, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.BatchNorm1d(4))
    model[3].weight.requires_grad_(False)
    # Shared parameters count once; BatchNorm buffers are not parameters.
    assert count_params(model) == (16 + 8, 16 + 4)
    assert tensor_bytes(model) == 4 * (16 + 8 + 4 + 4) + 8  # + num_batches


def test_quartiles_stay_within_the_rounds():
    from lpt_tools.benchmark.measure import quartiles

    # two very different rounds: the 'exclusive' default of
    # statistics.quantiles put the 25th percentile below 0 here
    q1, median, q3 = quartiles([0.0001, 0.05])
    assert 0.0001 <= q1 <= median <= q3 <= 0.05
    assert quartiles([0.3]) == (0.3, 0.3, 0.3)
