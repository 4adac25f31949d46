"""Sampling speed of fairseq's ``SequenceGenerator`` (the hub ``sample`` path) for ``durnn_lm``,
``lstm_lm`` and ``transformer_lm`` of equal parameter count, side by side in one run.

For each model, batch size and continuation length it prints tokens per second and the time per
generated token near the start (tokens 2-51 of the continuation) and at the end (its last 50),
taken from the decoder's calls (one call per generated token), so growth with the position is
visible. Top-20 sampling; ``min_len`` equals the length asked for, so no continuation stops early
at end-of-sentence. The models are untrained (random weights): decoding cost does not depend on
the values of the weights once end-of-sentence cannot stop it. The vocabulary is ``--vocab``
synthetic words with a full softmax.

    python examples/benchmarks/generate_speed.py                      # CPU, 2 threads
    python examples/benchmarks/generate_speed.py --device cuda
    python examples/benchmarks/generate_speed.py --lengths 100 --batches 1 --threads 1
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from fairseq import options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.hub_utils import GeneratorHubInterface

from bench_utils import header

PLUGIN = Path(__file__).resolve().parents[2] / "durnn_plugin"
PROMPT_WORDS = 3
# Tied 256-dimensional input/output embeddings for all three; the rest sized so the parameter
# counts (printed) are within 5% of each other.
MODELS = {
    "durnn_lm": ["--arch", "durnn_lm", "--num-layers", "2", "--embed-dim", "256",
                 "--hidden-size", "1024", "--short-size", "256", "--share-input-output-embed",
                 "--dropout", "0", "--embed-dropout", "0"],
    "lstm_lm": ["--arch", "lstm_lm", "--decoder-layers", "2", "--decoder-embed-dim", "256",
                "--decoder-hidden-size", "352", "--decoder-out-embed-dim", "256",
                "--share-decoder-input-output-embed"],
    "transformer_lm": ["--arch", "transformer_lm", "--decoder-layers", "4",
                       "--decoder-embed-dim", "256", "--decoder-ffn-embed-dim", "448",
                       "--decoder-input-dim", "256", "--decoder-output-dim", "256",
                       "--decoder-attention-heads", "4", "--share-decoder-input-output-embed"],
}


def write_dictionary(directory: Path, vocab: int) -> None:
    lines = [f"w{i} {vocab - i}" for i in range(vocab)]
    (directory / "dict.txt").write_text("\n".join(lines) + "\n")


def build_hub(name: str, data: Path, longest: int, device: str) -> GeneratorHubInterface:
    argv = [str(data), "--user-dir", str(PLUGIN), "--task", "language_modeling",
            "--tokens-per-sample", "128", "--max-target-positions", str(longest + 16),
            "--seed", "1"] + MODELS[name] + (["--cpu"] if device == "cpu" else [])
    cfg = convert_namespace_to_omegaconf(
        options.parse_args_and_arch(options.get_training_parser(), argv))
    task = tasks.setup_task(cfg.task)
    torch.manual_seed(1)
    model = task.build_model(cfg.model).to(device).eval()
    hub = GeneratorHubInterface(cfg, task, [model])
    return hub.to(device)


def parameter_count(hub: GeneratorHubInterface) -> int:
    return sum(p.numel() for p in hub.models[0].parameters())


def sample(hub: GeneratorHubInterface, batch: int, length: int, device: str) -> dict:
    """Generate ``length`` tokens after a 3-word prompt for ``batch`` copies of it. Also returns
    the median time per token spent in the decoder's forward (``decoder_ms``) and, for a model
    with a recurrent stack, in the stack (``stack_ms``)."""
    stamps, inside, decoder = [], [], hub.models[0].decoder
    forward = decoder.forward

    def timed_forward(*args, **kwargs):  # fairseq calls decoder.forward(), not the module
        stamps.append(time.perf_counter())
        output = forward(*args, **kwargs)
        inside.append(time.perf_counter() - stamps[-1])
        return output

    stack_times = []
    stack = getattr(decoder, "stack", None)
    hooks = [] if stack is None else [
        stack.register_forward_pre_hook(lambda m, i: stack_times.append(-time.perf_counter())),
        stack.register_forward_hook(lambda m, i, o: stack_times.append(time.perf_counter()))]

    decoder.forward = timed_forward
    hub.cfg.dataset.batch_size, hub.cfg.dataset.max_tokens = batch, None
    prompt = " ".join(f"w{i}" for i in range(4, 4 + PROMPT_WORDS))
    total = PROMPT_WORDS + length
    try:
        start = time.perf_counter()
        hub.sample([prompt] * batch, beam=1, sampling=True, sampling_topk=20, max_len_a=0,
                   max_len_b=total, min_len=total)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    finally:
        del decoder.forward
        for hook in hooks:
            hook.remove()
    steps = [b - a for a, b in zip(stamps, stamps[1:])]  # one interval per generated token
    window = min(50, max(1, len(steps) // 4))
    stack_ms = [1e3 * (a + b) for a, b in zip(stack_times[::2], stack_times[1::2])]
    return {"tokens_per_s": batch * length / seconds,
            "start_ms": 1e3 * statistics.median(steps[1:1 + window]),
            "end_ms": 1e3 * statistics.median(steps[-window:]),
            "step_ms": 1e3 * statistics.median(steps),
            "decoder_ms": 1e3 * statistics.median(inside),
            "stack_ms": statistics.median(stack_ms) if stack_ms else None}


def print_profile(hubs: dict, length: int, device: str) -> None:
    """Where the time of one generated token goes (batch 1, medians over a continuation)."""
    print(f"\nPer-token time at batch 1 over {length} tokens (medians, ms): the recurrent stack, "
          "the rest of the decoder (embedding, output projection and logits), and the "
          "generator outside the model (log-softmax, top-k sampling, bookkeeping)")
    print("| model | per token | stack | rest of the decoder | generator |")
    print("|---|---:|---:|---:|---:|")
    for name, hub in hubs.items():
        r = sample(hub, 1, length, device)
        stack = r["stack_ms"]
        rest = r["decoder_ms"] - (stack or 0.0)
        print(f"| {name} | {r['step_ms']:.2f} | {'-' if stack is None else f'{stack:.2f}'} | "
              f"{rest:.2f} | {r['step_ms'] - r['decoder_ms']:.2f} |", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    p.add_argument("--vocab", type=int, default=10000)
    p.add_argument("--batches", default="1,16", help="comma-separated batch sizes")
    p.add_argument("--lengths", default="100,1000,4000", help="comma-separated continuations")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--profile", type=int, default=200, metavar="TOKENS",
                   help="then split the per-token time over TOKENS tokens at batch 1 (0: skip)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    batches = [int(b) for b in a.batches.split(",")]
    lengths = [int(n) for n in a.lengths.split(",")]
    names = a.models.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        p.error(f"invalid --models value {unknown[0]}: must be among {', '.join(MODELS)}")
    print(f"# {header(a.device)}; vocabulary {a.vocab}, top-20 sampling, "
          f"prompt {PROMPT_WORDS} tokens")
    print(f"# command: python {' '.join(sys.argv)}")
    with tempfile.TemporaryDirectory() as tmp:
        write_dictionary(Path(tmp), a.vocab)
        hubs = {n: build_hub(n, Path(tmp), max(lengths), a.device) for n in names}
        for name, hub in hubs.items():
            print(f"# {name}: {parameter_count(hub):,} parameters")
        print("| model | batch | tokens | tokens/s | ms/token at start | ms/token at end |")
        print("|---|---:|---:|---:|---:|---:|")
        for batch in batches:
            for length in lengths:
                for name, hub in hubs.items():
                    r = sample(hub, batch, length, a.device)
                    print(f"| {name} | {batch} | {length} | {r['tokens_per_s']:.0f} | "
                          f"{r['start_ms']:.2f} | {r['end_ms']:.2f} |", flush=True)
        if a.profile:
            print_profile(hubs, a.profile, a.device)


if __name__ == "__main__":
    main()
