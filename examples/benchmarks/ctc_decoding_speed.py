"""Time per output frame of the streaming recogniser's CTC decoders
(``examples/speech_recognition/ctc_decoding.py``): best path, and the prefix beam search for each
``--beams`` without and with shallow fusion of a ``durnn_lm`` (``--lm-layers`` x
``--lm-hidden``, embedding ``--lm-embed`` tied to the output, as ``train_speech_lm.py`` builds
it; random weights: the cost does not depend on their values).

The frames are ``--frames`` synthetic log-probabilities over ``--vocab`` tokens, pushed
``--chunk`` at a time (a 100 ms chunk holds 2.5 output frames of a model that subsamples 10 ms
frames by 4), of two kinds: ``peaked``, like a trained CTC output (each frame one token far
ahead, the blank in two frames of three, the rest random logits of std 2), and ``flat``
(logits of std 1: every token within the pruning threshold, the search's worst case).

    python examples/benchmarks/ctc_decoding_speed.py [--threads 1] [--beams 4,8]
"""
import argparse
import os
import sys
from types import SimpleNamespace

import torch
from fairseq.data import Dictionary

from bench_utils import header, median_seconds

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
from durnn_plugin.models.durnn_lm import (  # noqa: E402
    DuRNNLanguageModel, DuRNNLanguageModelConfig)
from examples.speech_recognition.ctc_decoding import (  # noqa: E402
    GreedyCTC, LMScorer, PrefixBeamCTC)


def lprobs_of(kind: str, frames: int, vocab: int, seed: int = 0) -> torch.Tensor:
    """``(frames, vocab)`` log-probabilities of the module docstring's ``kind``."""
    g = torch.Generator().manual_seed(seed)
    if kind == "flat":
        return torch.log_softmax(torch.randn(frames, vocab, generator=g), -1)
    logits = 2 * torch.randn(frames, vocab, generator=g)
    top = torch.randint(4, vocab, (frames,), generator=g)
    top[torch.rand(frames, generator=g) < 2 / 3] = 0
    logits[torch.arange(frames), top] += 12
    return torch.log_softmax(logits, -1)


def language_model(args) -> LMScorer:
    d = Dictionary()
    for i in range(args.vocab - len(d)):
        d.add_symbol(f"p{i}")
    torch.manual_seed(0)
    cfg = DuRNNLanguageModelConfig(embed_dim=args.lm_embed, hidden_size=args.lm_hidden,
                                   num_layers=args.lm_layers, dropout=0.0, embed_dropout=0.0,
                                   share_input_output_embed=True, u_time_steps=100)
    return LMScorer(DuRNNLanguageModel.build_model(cfg, SimpleNamespace(target_dictionary=d)), d)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--beams", default="4,8", help="comma-separated beam sizes")
    ap.add_argument("--lm-layers", type=int, default=2)
    ap.add_argument("--lm-hidden", type=int, default=256)
    ap.add_argument("--lm-embed", type=int, default=64)
    ap.add_argument("--lm-weight", type=float, default=0.5)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--chunk", type=int, default=3, help="frames per push")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    lm = language_model(args)
    decoders = [("best path", "-", "-", GreedyCTC)]
    for beam in (int(b) for b in args.beams.split(",")):
        decoders.append(("prefix beam", beam, "-", lambda beam=beam: PrefixBeamCTC(beam)))
        decoders.append(("prefix beam", beam, f"{args.lm_layers} x {args.lm_hidden}",
                         lambda beam=beam: PrefixBeamCTC(beam, lm=lm, lm_weight=args.lm_weight)))
    print(header("cpu"))
    print(f"vocabulary {args.vocab}, {args.frames} frames pushed {args.chunk} at a time, "
          f"median of {args.repeat}")
    print("| decoder | beam | LM | frames | ms per frame |\n| --- | --- | --- | --- | --- |")
    for kind in ("peaked", "flat"):
        lprobs = lprobs_of(kind, args.frames, args.vocab)
        for name, beam, lm_name, make in decoders:
            def decode():
                decoder = make()
                for start in range(0, len(lprobs), args.chunk):
                    decoder.push(lprobs[start:start + args.chunk])
                decoder.finish()
            seconds = median_seconds(decode, args.repeat)
            print(f"| {name} | {beam} | {lm_name} | {kind} | {seconds / args.frames * 1e3:.3f} |")


if __name__ == "__main__":
    main()
