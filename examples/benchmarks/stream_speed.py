"""Streaming recognition on the CPU: real-time factor, latency per chunk and memory of
``stream.py``'s recogniser (an ``s2t_durnn_ctc`` checkpoint), against the offline recogniser
(``transcribe.py``: an ``s2t_durnn`` checkpoint, fairseq's beam search) on the same audio,
side by side in one run.

The audio (``--audio``: WAV files, concatenated and repeated to each length of ``--seconds``;
default: the recipe's real-speech dev set) is handed to the recogniser in chunks of
``--chunk-ms``, as :func:`stream.stream_audio` does, one chunk after the other without waiting
(so the machine runs flat out). For each torch thread count, decoder (best path; the prefix
beam ``--beam`` with the LM ``--lm-path`` if given) and length it prints:

- real-time factor: compute seconds / audio seconds;
- latency: seconds from a chunk's hand-over to its partial transcript (filterbanks, feature
  transform, ``model.stream``, the decoder's ``push`` and the text), median and 95th
  percentile over the chunks, and the end of the utterance (``finish``);
- memory: the growth of the resident set during the utterance (MB), which stays flat in the
  length when nothing grows with it.

The offline recogniser reads the whole file first, so its latency is its whole compute time
after the end of the utterance (``--offline-path``; lengths up to ``--offline-seconds``).

    python -m examples.benchmarks.stream_speed --path STREAM.pt [--lm-path LM.pt --lm-weight W]
        [--offline-path OFFLINE.pt] [--threads 1,2] [--seconds 10,60,300]
"""
import argparse
import glob
import os
import statistics
import sys
import tempfile
import time
from typing import Dict, Sequence

import soundfile as sf
import torch

from examples.benchmarks.bench_utils import header
from examples.speech_recognition import features
from examples.speech_recognition.stream import StreamingRecogniser
from examples.speech_recognition.transcribe import Transcriber

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEV_WAVS = os.path.join(REPO, "examples", "speech_recognition", "work", "wav_real", "*.wav")


def resident_mb() -> float:
    """The process's resident set (MB), from ``/proc/self/statm`` (0 where there is none)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except OSError:
        return 0.0


def audio_of(paths: Sequence[str], seconds: float) -> torch.Tensor:
    """The files' 16 kHz samples one after the other, repeated to ``seconds``: ``(S,)``."""
    pieces = [features.load_audio(p)[0] for p in paths]
    whole = torch.cat(pieces)
    n = int(seconds * features.SAMPLE_RATE)
    return whole.repeat(-(-n // len(whole)))[:n].contiguous()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def time_stream(recogniser: StreamingRecogniser, samples: torch.Tensor,
                chunk: int) -> Dict[str, float]:
    """One utterance in chunks of ``chunk`` samples: real-time factor, latencies (s), memory."""
    blocks = [samples[i:i + chunk] for i in range(0, len(samples), chunk)]
    frames = recogniser.feature_chunks(iter(blocks))  # filterbanks computed as each is pulled
    utterance = recogniser.utterance()
    start_mb = peak_mb = resident_mb()
    latencies = []
    for _ in blocks:
        t0 = time.perf_counter()
        utterance.push_text(next(frames)[1])  # as stream_audio: ids, then words when changed
        latencies.append(time.perf_counter() - t0)
        peak_mb = max(peak_mb, resident_mb())
    t0 = time.perf_counter()
    utterance.text_of(utterance.finish())  # the end of the utterance
    latencies.append(time.perf_counter() - t0)
    seconds = len(samples) / features.SAMPLE_RATE
    per_chunk = latencies[:-1]
    return {"rtf": sum(latencies) / seconds, "median": statistics.median(per_chunk),
            "p95": percentile(per_chunk, 0.95), "end": latencies[-1],
            "memory": peak_mb - start_mb}


def time_offline(transcriber: Transcriber, samples: torch.Tensor, tmp: str) -> Dict[str, float]:
    """The offline recogniser on the same samples (written to a WAV file, as it reads files)."""
    path = os.path.join(tmp, "offline.wav")
    sf.write(path, samples.numpy(), features.SAMPLE_RATE, subtype="PCM_16")
    start_mb = resident_mb()
    t0 = time.perf_counter()
    transcriber(path)
    seconds = time.perf_counter() - t0
    return {"rtf": seconds / (len(samples) / features.SAMPLE_RATE), "end": seconds,
            "memory": resident_mb() - start_mb}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--path", required=True, help="s2t_durnn_ctc checkpoint")
    ap.add_argument("--data", default=None, help="its data directory (default: the checkpoint's)")
    ap.add_argument("--lm-path", default=None, help="durnn_lm checkpoint for the beam")
    ap.add_argument("--lm-weight", type=float, default=0.3)
    ap.add_argument("--beam", type=int, default=8)
    ap.add_argument("--offline-path", default=None, help="s2t_durnn checkpoint to compare")
    ap.add_argument("--audio", nargs="*", default=None,
                    help="WAV files (default: the recipe's real-speech dev set)")
    ap.add_argument("--seconds", default="10,60,300", help="utterance lengths")
    ap.add_argument("--offline-seconds", type=float, default=60,
                    help="the longest length given to the offline recogniser")
    ap.add_argument("--chunk-ms", type=int, default=100)
    ap.add_argument("--threads", default="1,2", help="torch thread counts")
    args = ap.parse_args(argv)
    paths = args.audio or sorted(glob.glob(DEV_WAVS))
    if not paths:
        sys.exit(f"stream_speed.py: error: no --audio given and no {DEV_WAVS}; run the speech "
                 "recipe first or name WAV files")
    lengths = [float(s) for s in args.seconds.split(",")]
    chunk = args.chunk_ms * features.SAMPLE_RATE // 1000
    decoders = {"best path": StreamingRecogniser(args.path, args.data)}
    if args.beam > 1:
        name = f"beam {args.beam}" + (f" + LM x {args.lm_weight:g}" if args.lm_path else "")
        decoders[name] = StreamingRecogniser(args.path, args.data, args.beam, args.lm_path,
                                             args.lm_weight)
    offline = Transcriber(args.offline_path) if args.offline_path else None
    audio = {s: audio_of(paths, s) for s in lengths}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(threads)
            for name, recogniser in decoders.items():
                time_stream(recogniser, audio[lengths[0]][:chunk * 5], chunk)  # warm-up
                for s in lengths:
                    r = time_stream(recogniser, audio[s], chunk)
                    rows.append(f"| {threads} | streaming, {name} | {s:g} | {r['rtf']:.4f} | "
                                f"{1000 * r['median']:.2f} | {1000 * r['p95']:.2f} | "
                                f"{1000 * r['end']:.1f} | {r['memory']:.1f} |")
                    print(rows[-1], flush=True)
            if offline is not None:
                time_offline(offline, audio[lengths[0]][:chunk * 10], tmp)  # warm-up
                for s in [s for s in lengths if s <= args.offline_seconds]:
                    r = time_offline(offline, audio[s], tmp)
                    rows.append(f"| {threads} | offline `s2t_durnn`, beam 5 | {s:g} | "
                                f"{r['rtf']:.4f} | – | – | {1000 * r['end']:.1f} | "
                                f"{r['memory']:.1f} |")
                    print(rows[-1], flush=True)
    print()
    print(f"{header('cpu', threads=False)}; chunks of {args.chunk_ms} ms; audio: "
          f"{len(paths)} files")
    print("| threads | recogniser | seconds of audio | real-time factor | latency median (ms) "
          "| latency p95 (ms) | end of utterance (ms) | memory growth (MB) |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
