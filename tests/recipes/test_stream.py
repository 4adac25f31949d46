"""The streaming recogniser (``examples/speech_recognition/stream.py``): incremental filterbanks
equal to the offline ones over any chunking."""
import numpy as np
import pytest
import torch

from examples.speech_recognition import features


def pushed(samples: torch.Tensor, chunk: int) -> np.ndarray:
    """All frames of a :class:`features.StreamingFbank` fed ``samples`` ``chunk`` at a time."""
    fbank = features.StreamingFbank()
    out = [fbank.push(samples[i:i + chunk]) for i in range(0, len(samples), chunk)]
    return np.concatenate(out)


@pytest.mark.parametrize("chunk", [1, 159, 160, 161, 400, 1600, 100000])
@pytest.mark.parametrize("n_samples", [399, 400, 559, 560, 4321])
def test_streaming_fbank_equals_the_offline_fbank_over_any_chunking(chunk, n_samples):
    samples = torch.randn(n_samples, generator=torch.Generator().manual_seed(n_samples)) * 0.1
    frames = pushed(samples, chunk)
    # kaldi.fbank refuses fewer samples than one window; a stream has no frame yet
    expected = features.fbank(samples[None]) if n_samples >= 400 else np.zeros((0, 80))
    assert frames.shape == expected.shape == (max(0, 1 + (n_samples - 400) // 160), 80)
    # the mel filters' matrix product rounds differently for different numbers of frames
    np.testing.assert_allclose(frames, expected, rtol=1e-6, atol=1e-5)


def test_streaming_fbank_returns_each_frame_when_its_window_completes():
    fbank = features.StreamingFbank()
    assert [len(fbank.push(torch.zeros(n))) for n in (399, 1, 159, 1, 320)] == [0, 1, 0, 1, 2]
