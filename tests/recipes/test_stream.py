"""The streaming recogniser (``examples/speech_recognition/stream.py``): incremental filterbanks
equal to the offline ones over any chunking; the command line, chunked, equal to the offline
forward of an ``s2t_durnn_ctc`` checkpoint; stdin, refusals, and the manifest mode's
fairseq-generate output."""
import io
import math
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import speech_runs
from examples.speech_recognition import features, stream, train_speech_lm, wer_by_voice
from fairseq_runs import REPO


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


# ---- the command line, with a tiny s2t_durnn_ctc checkpoint saved by fairseq-train

TINY_CTC = ["--arch", "s2t_durnn_ctc", "--conv-channels", "16", "--conv-kernel-sizes", "5,5",
            "--encoder-embed-dim", "16", "--encoder-num-layers", "2",
            "--encoder-hidden-size", "16", "--dropout", "0"]
needs_speech = pytest.mark.skipif(bool(speech_runs.prepare_speech.synthesize.missing_tools()),
                                  reason="needs flite, espeak-ng and sox (apt-get)")


def trained(test):
    """A test of the command line: the corpus, and a checkpoint trained by fairseq-train."""
    return needs_speech(pytest.mark.slow(test))


@pytest.fixture(scope="module")
def ctc_checkpoint(data, tmp_path_factory):
    """One update of fairseq-train (nearly random weights) on the corpus, global CMVN."""
    save_dir = tmp_path_factory.mktemp("ctc")
    speech_runs.train(data, save_dir, TINY_CTC, updates=1,
                      extra=["--criterion", "durnn_ctc", "--config-yaml", "config_gcmvn.yaml"])
    return save_dir / "checkpoint_last.pt"


@pytest.fixture(scope="module")
def recogniser(ctc_checkpoint):
    return stream.StreamingRecogniser(str(ctc_checkpoint))


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    """1.234 s of a sine sweep in noise, 16 kHz 16-bit mono."""
    t = np.arange(19744) / 16000
    rng = np.random.default_rng(0)
    samples = 0.3 * np.sin(2 * np.pi * (200 + 900 * t) * t) + 0.05 * rng.standard_normal(len(t))
    path = tmp_path_factory.mktemp("audio") / "sweep.wav"
    sf.write(path, samples, 16000, subtype="PCM_16")
    return path


def offline(recogniser, samples: torch.Tensor):
    """Log-probabilities ``(T, V)`` of the whole waveform ``(1, S)`` in one forward, and their
    best path's text (argmax, repeats collapsed, blanks dropped)."""
    feats = torch.from_numpy(recogniser.transforms(features.fbank(samples)))
    with torch.no_grad():
        lprobs = recogniser.model.ctc_log_probs(feats[None], torch.tensor([len(feats)]))[0][:, 0]
    best = torch.unique_consecutive(lprobs.argmax(-1))
    return lprobs, recogniser.text(recogniser.pieces(best[best != 0].tolist()))


def run(argv, capsys, stdin=None, monkeypatch=None):
    """stream.main(argv) -> (exit status, stdout lines, stderr lines)."""
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    try:
        stream.main([str(a) for a in argv])
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out.splitlines(), [line for line in err.splitlines() if "error" in line]


@trained
@pytest.mark.parametrize("chunk_ms", [10, 30, 100])
def test_chunked_cli_equals_the_offline_forward(ctc_checkpoint, recogniser, wav, chunk_ms,
                                                tmp_path, capsys):
    saved = tmp_path / "lprobs.npy"
    status, out, _ = run([wav, "--path", ctc_checkpoint, "--chunk-ms", chunk_ms,
                          "--save-lprobs", saved], capsys)
    assert status == 0
    lprobs, text = offline(recogniser, features.read_wav(str(wav)))
    streamed = torch.from_numpy(np.load(saved))
    assert streamed.shape == lprobs.shape == (math.ceil(121 / 4), len(recogniser.dictionary))
    torch.testing.assert_close(streamed, lprobs, rtol=1e-5, atol=1e-5)
    assert text and out[-1] == f"final: {text}"
    partial = [line for line in out[:-1] if line.startswith("partial ")]
    assert len(partial) == len(out) - 1 >= 2
    times = [float(line.split()[1][:-2]) for line in partial]
    assert times == sorted(times) and all(round(t * 1000) % chunk_ms == 0 for t in times[:-1])
    assert partial[-1].split(": ", 1)[1] == text


@trained
def test_another_rate_and_channels_are_averaged_and_resampled_first(recogniser, ctc_checkpoint,
                                                                     wav, tmp_path, capsys):
    samples, _ = sf.read(wav)
    stereo = tmp_path / "stereo.flac"
    sf.write(stereo, np.stack([samples, 0.5 * samples], 1)[::2], 8000)
    status, out, _ = run([stereo, "--path", ctc_checkpoint, "--quiet"], capsys)
    _, text = offline(recogniser, features.load_audio(str(stereo), peak_normalise=False))
    assert status == 0 and out == [f"final: {text}"]


@trained
def test_stdin_pcm_gives_what_the_file_gives(ctc_checkpoint, wav, capsys, monkeypatch):
    from_file = run([wav, "--path", ctc_checkpoint, "--chunk-ms", 30], capsys)
    pcm = sf.read(wav, dtype="int16")[0].astype("<i2").tobytes()
    from_stdin = run(["-", "--path", ctc_checkpoint, "--chunk-ms", 30], capsys, pcm, monkeypatch)
    assert from_stdin == from_file and from_file[0] == 0 and len(from_file[1]) >= 3


@trained
@pytest.mark.parametrize("pcm, problem", [(b"", "no samples on stdin"),
                                          (b"\x01\x02\x03", "3 bytes, an odd number")])
def test_empty_or_odd_stdin_is_refused_in_one_line(ctc_checkpoint, pcm, problem, capsys,
                                                   monkeypatch):
    status, _, err = run(["-", "--path", ctc_checkpoint], capsys, pcm, monkeypatch)
    assert status == 2 and len(err) == 1 and f"AUDIO '-': {problem}; must be raw 16-bit" in err[0]


@trained
@pytest.mark.parametrize("chunk_ms", [0, -10, 15, 105])
def test_a_chunk_that_is_not_a_positive_multiple_of_10_ms_is_refused(ctc_checkpoint, wav,
                                                                     chunk_ms, capsys):
    status, out, err = run([wav, "--path", ctc_checkpoint, "--chunk-ms", chunk_ms], capsys)
    assert status == 2 and out == [] and err == [
        f"stream.py: error: --chunk-ms {chunk_ms}: must be a positive multiple of 10 (ms, the "
        "frame shift), e.g. 10, 40, 100"]


@trained
def test_unreadable_or_empty_audio_is_refused_in_one_line(ctc_checkpoint, tmp_path, capsys):
    (tmp_path / "text.wav").write_text("not audio")
    sf.write(tmp_path / "empty.wav", np.zeros(0), 16000)
    for name, problem in [("missing.wav", "no such file"), ("text.wav", "must be a readable"),
                          ("empty.wav", "no samples")]:
        status, out, err = run([tmp_path / name, "--path", ctc_checkpoint], capsys)
        assert status == 2 and out == [] and len(err) == 1
        assert f"AUDIO '{tmp_path / name}': " in err[0] and problem in err[0]


@trained
def test_a_config_with_utterance_cmvn_is_refused_in_one_line(data, ctc_checkpoint, wav,
                                                             tmp_path, capsys):
    other = tmp_path / "data"
    shutil.copytree(data, other, symlinks=True)
    config = other / "config_gcmvn.yaml"
    config.write_text(config.read_text().replace("global_cmvn\n", "utterance_cmvn\n"))
    status, out, err = run([wav, "--path", ctc_checkpoint, "--data", other], capsys)
    assert status == 2 and out == [] and err == [
        f"stream.py: error: {config}: feature transform 'utterance_cmvn' for split 'test' does "
        "not act on each frame alone; a stream needs per-frame transforms only (global_cmvn: "
        "train with --config-yaml config_gcmvn.yaml)"]


@trained
def test_a_checkpoint_without_a_stream_is_refused_in_one_line(checkpoint, wav, capsys):
    status, out, err = run([wav, "--path", checkpoint], capsys)
    assert status == 2 and out == [] and len(err) == 1
    assert "cannot decode a stream; must be an s2t_durnn_ctc checkpoint" in err[0]


@needs_speech
def test_the_streaming_front_end_computes_the_feature_files(data):
    for row in features.read_manifest(str(data / "test_digits.tsv")):
        wav = data.parent / "wav" / f"{row['id']}.wav"
        fbank = features.StreamingFbank()
        frames = np.concatenate([fbank.push(b) for b in stream.file_blocks(str(wav), 480)])
        np.testing.assert_allclose(frames, np.load(data / row["audio"]), rtol=1e-6, atol=1e-5)


@trained
def test_manifest_mode_writes_what_wer_by_voice_and_run_digits_read(data, ctc_checkpoint,
                                                                    recogniser, tmp_path,
                                                                    capsys):
    tsv = data / "test_digits.tsv"
    outputs = {}
    for mode in ("stream", "offline"):
        status, out, _ = run(["--manifest", tsv, "--path", ctc_checkpoint, "--chunk-ms", 30,
                              "--results-path", tmp_path / mode] + (["--offline"] * (
                                  mode == "offline")), capsys)
        text = (tmp_path / mode / "generate-test_digits.txt").read_text()
        assert status == 0 and out == [text.splitlines()[-1]]
        outputs[mode] = text
    lines = {m: [line for line in t.splitlines() if line[:2] in ("H-", "D-")]
             for m, t in outputs.items()}
    for streamed, whole in zip(lines["stream"], lines["offline"]):
        kind, score, hyp = streamed.split("\t")
        assert whole.split("\t")[::2] == [kind, hyp]
        assert float(whole.split("\t")[1]) == pytest.approx(float(score), rel=1e-4)
    rows, _ = wer_by_voice.check_manifest(str(tsv), features.read_manifest(str(tsv)),
                                          str(data), 1)
    pairs = wer_by_voice.read_generate(str(tmp_path / "stream" / "generate-test_digits.txt"))
    per_voice, (wer, words, n) = wer_by_voice.wer_by_speaker(rows, pairs)
    assert n == len(rows) == len(lines["stream"]) // 2 == 4 and set(per_voice) == set(
        speech_runs.TEST_VOICES)
    total = re.fullmatch(r"Generate test_digits with beam=1: WER: ([0-9.]+)",
                         outputs["stream"].splitlines()[-1])
    assert float(total.group(1)) == pytest.approx(wer, abs=0.005)
    # each row's hypothesis is what the command line streams from the row's WAV file
    for i, row in enumerate(rows):
        _, out, _ = run([data.parent / "wav" / f"{row['id']}.wav", "--path", ctc_checkpoint,
                         "--quiet"], capsys)
        assert out == [f"final: {pairs[i][1]}"]


@pytest.fixture(scope="module")
def lm(data, tmp_path_factory):
    """A tiny durnn_lm in the recogniser's pieces (train_speech_lm.py)."""
    save_dir = tmp_path_factory.mktemp("lm")
    train_speech_lm.main(["--data", str(data), "--save-dir", str(save_dir), "--max-update", "40",
                          "--", "--embed-dim", "16", "--hidden-size", "32", "--short-size", "8",
                          "--num-layers", "1", "--dropout", "0", "--embed-dropout", "0",
                          "--lr", "0.01"])
    return save_dir / "checkpoint_last.pt"


@trained
def test_the_lm_options_reach_the_beam_search(data, ctc_checkpoint, lm, tmp_path, capsys):
    def hypotheses(*options):
        results = tmp_path / "-".join(map(str, options))
        status, _, _ = run(["--manifest", data / "test_digits.tsv", "--path", ctc_checkpoint,
                            "--beam", 4, *options, "--results-path", results], capsys)
        assert status == 0
        text = (results / "generate-test_digits.txt").read_text()
        return [line.split("\t")[2] for line in text.splitlines() if line.startswith("D-")]

    plain = hypotheses()
    assert hypotheses("--lm-path", lm, "--lm-weight", 0) == plain
    assert hypotheses("--lm-path", lm, "--lm-weight", 3) != plain
    status, _, err = run(["--manifest", data / "test_digits.tsv", "--path", ctc_checkpoint,
                          "--lm-path", lm, "--results-path", tmp_path], capsys)
    assert status == 2 and err == ["stream.py: error: --lm-path: fusion needs the beam search; "
                                   "must come with --beam 2 or more"]


@trained
@pytest.mark.parametrize("named_by", ["ARCH", "train.log"])
def test_run_digits_evaluates_an_s2t_durnn_ctc_checkpoint_with_stream_py(data, ctc_checkpoint,
                                                                        named_by, tmp_path):
    work = tmp_path / "work"
    (work / "checkpoints").mkdir(parents=True)
    shutil.copy(ctc_checkpoint, work / "checkpoints" / "checkpoint_best.pt")
    env = {**os.environ, "PREPARE": "0", "TRAIN_MINUTES": "0", "LM_MINUTES": "0",
           "REAL_DEV": "0", "THREADS": "1", "VENV": str(REPO / ".venv"), "WORK": str(work),
           "DATA": str(data)}
    env.pop("ARCH", None)
    if named_by == "ARCH":
        env["ARCH"] = "s2t_durnn_ctc_s"
    else:  # the log of the training run that saved the checkpoint (TRAIN_MINUTES=0 keeps it)
        (work / "logs").mkdir()
        (work / "logs" / "train.log").write_text("Namespace(..., arch='s2t_durnn_ctc_s', ...)\n")
    done = subprocess.run(["bash", str(REPO / "examples" / "speech_recognition" /
                                       "run_digits.sh")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "== evaluate: stream.py, WER on the held-out voices" in done.stdout
    generated = (work / "results" / "generate-test_digits.txt").read_text()
    total = generated.splitlines()[-1]
    assert re.fullmatch(r"Generate test_digits with beam=5: WER: [0-9.]+", total)
    summary = (work / "results.txt").read_text().splitlines()
    row = summary.index(f"test_digits (fairseq-generate: {total.split(': ', 1)[1]}):")
    voices = sorted(line.split()[0] for line in summary[row + 1:row + 3])
    assert voices == sorted(speech_runs.TEST_VOICES) and summary[row + 3].split()[0] == "all"


@trained
@pytest.mark.parametrize("options, message", [
    (["--offline"], "--offline: belongs to the other mode; must come with --manifest or "
                    "--gen-subset"),
    (["--results-path", "r"], "--results-path: belongs to the other mode; must come with "
                              "--manifest or --gen-subset"),
    (["--lm-weight", "0.5"], "--lm-weight 0.5: needs --lm-path"),
    (["--beam", "0"], "--beam 0: must be 1 (best path) or more (beam search)")])
def test_options_of_the_other_mode_are_refused_in_one_line(ctc_checkpoint, wav, options,
                                                           message, capsys):
    status, out, err = run([wav, "--path", ctc_checkpoint, *options], capsys)
    assert status == 2 and out == [] and err == [f"stream.py: error: {message}"]


@trained
def test_pad_and_end_of_sentence_are_dropped_from_the_pieces(recogniser):
    d = recogniser.dictionary
    piece = d.index("▁two") if "▁two" in d.symbols else 4
    assert recogniser.pieces([d.pad(), piece, d.eos(), piece, d.pad()]) == \
        f"{d[piece]} {d[piece]}"


@trained
def test_the_streaming_benchmark_prints_its_table(ctc_checkpoint, checkpoint, wav):
    """examples/benchmarks/stream_speed.py end to end on tiny models: a row per recogniser and
    length, the streaming ones with latencies."""
    out = subprocess.run(
        [sys.executable, "-m", "examples.benchmarks.stream_speed", "--path", str(ctc_checkpoint),
         "--offline-path", str(checkpoint), "--audio", str(wav), "--seconds", "0.5,1.5",
         "--threads", "1", "--beam", "3"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line for line in out.stdout.splitlines() if re.match(r"^\| 1 \| ", line)]
    table = rows[len(rows) // 2:]  # the rows are printed as they come, then as a table
    assert [r.split(" | ")[1:3] for r in table] == [
        ["streaming, best path", "0.5"], ["streaming, best path", "1.5"],
        ["streaming, beam 3", "0.5"], ["streaming, beam 3", "1.5"],
        ["offline `s2t_durnn`, beam 5", "0.5"], ["offline `s2t_durnn`, beam 5", "1.5"]]
    assert all(float(r.split(" | ")[3]) > 0 for r in table)  # a real-time factor was measured
