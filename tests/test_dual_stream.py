import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from mmpretrain.structures import DataSample

import lpt_mmpretrain
from lpt_mmpretrain.structures import (STREAM_CB, STREAM_IB, STREAM_KEY,
                                       get_streams, split_streams)


def make_samples(streams):
    samples = []
    for s in streams:
        sample = DataSample().set_gt_label(0)
        if s is not None:
            sample.set_metainfo({STREAM_KEY: s})
        samples.append(sample)
    return samples


def test_constants():
    assert (STREAM_CB, STREAM_IB, STREAM_KEY) == (0, 1, 'sampling_stream')


def test_get_streams_none_without_field():
    assert get_streams(make_samples([None, None])) is None
    assert get_streams(None) is None
    assert get_streams([None, None]) is None


@pytest.mark.parametrize('value_type', [int, np.int64, torch.tensor])
def test_get_streams_values(value_type):
    raw = [1, 0, 0, 1, 1, 0]
    streams = get_streams(make_samples([value_type(v) for v in raw]))
    assert streams.dtype == torch.long
    assert streams.tolist() == raw


def test_get_streams_device():
    streams = get_streams(make_samples([0, 1]), device='cpu')
    assert streams.device.type == 'cpu'


def test_get_streams_partial_is_error():
    with pytest.raises(ValueError, match='carry no `sampling_stream`'):
        get_streams(make_samples([0, None, 1]))


@pytest.mark.parametrize('bad', [2, -1, 0.5, True, 'cb'])
def test_get_streams_bad_value(bad):
    with pytest.raises(ValueError, match='stream id must be 0'):
        get_streams(make_samples([0, bad]))


def test_get_streams_multi_element_tensor():
    with pytest.raises(ValueError, match='2 elements'):
        get_streams(make_samples([torch.tensor([0, 1]), 0]))


def test_split_streams_interleaved():
    cb, ib = split_streams(make_samples([1, 0, 1, 1, 0, 0]))
    assert cb.dtype == torch.bool and ib.dtype == torch.bool
    assert cb.tolist() == [False, True, False, False, True, True]
    assert ib.tolist() == [not c for c in cb.tolist()]


def test_split_streams_unequal():
    with pytest.raises(ValueError, match=r'2 x the sampler'):
        split_streams(make_samples([0, 0, 1]))


def test_split_streams_one_empty():
    with pytest.raises(ValueError, match='no instance-balanced sample'):
        split_streams(make_samples([0, 0]))
    with pytest.raises(ValueError, match='no class-balanced sample'):
        split_streams(make_samples([1, 1]))


def test_split_streams_without_streams():
    with pytest.raises(ValueError, match='DualClassBalancedSampler'):
        split_streams(make_samples([None, None]))


def test_split_streams_from_tensor():
    streams = torch.tensor([1, 0, 1, 1, 0, 0])
    cb, ib = split_streams(streams)
    assert cb.tolist() == [False, True, False, False, True, True]
    assert ib.tolist() == [not c for c in cb.tolist()]
    with pytest.raises(ValueError, match=r'2 x the sampler'):
        split_streams(torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match='DualClassBalancedSampler'):
        split_streams(None)


def test_data_side_does_not_import_models():
    """The data sets, samplers and streams depend on no model code."""
    package = Path(lpt_mmpretrain.__file__).parent
    for folder in ('datasets', 'structures'):
        for path in (package / folder).rglob('*.py'):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom):
                    names = [node.module or '']
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                else:
                    continue
                for name in names:
                    assert not (name == 'models' or name.startswith(
                        ('models.', 'lpt_mmpretrain.models'))), (path, name)
