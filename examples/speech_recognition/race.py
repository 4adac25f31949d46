#!/usr/bin/env python3
"""Speech races on CPU: ``s2t_durnn`` against fairseq's speech models, and the augmentation
ablation; a WER table per held-out voice and learning curves.

Run from the repository root, with the project's venv::

    .venv/bin/python -m examples.speech_recognition.race race --count-only   # parameters only
    .venv/bin/python -m examples.speech_recognition.race race --jobs 2 --threads 1     # 4 x 20 min
    .venv/bin/python -m examples.speech_recognition.race ablation --jobs 2 --threads 1 # 10 x 10
    .venv/bin/python -m examples.speech_recognition.race extra --jobs 2 --threads 1    # 4 x 10

Plans (:data:`PLANS`):

- ``race``: ``s2t_durnn_s`` vs fairseq's ``s2t_transformer_xs``, ``s2t_berard`` and
  ``s2t_conformer``, resized so that their parameter counts are within 5% of ``s2t_durnn_s``'s
  (:data:`RACE`; checked on the data's dictionary before any training, the run is refused
  otherwise), on the same data (``prepare_speech.py`` defaults plus ``--prepare-args``), 20
  minutes each; a fifth run,
  ``durnn-ctc``, is ``s2t_durnn_s`` with an auxiliary CTC loss on its encoder
  (``--encoder-ctc``, fairseq's ``label_smoothed_cross_entropy_with_ctc``, weight 0.3); a
  sixth, ``durnn-stream``, the streaming recogniser ``s2t_durnn_ctc_s`` (encoder only, CTC),
  resized like the others.
- ``ablation``: ``s2t_durnn_s`` on the digits and numbers texts (:data:`ABLATION_TEXTS`), one
  data directory per augmentation option (:data:`ABLATION`, one option at a time, then all
  together), 10 minutes each.
- ``extra``: as ``ablation``, all the default options, then each option that is off by default
  (``--pad-silence``, ``--vtln``, ``--noise-only``) on top of them (:data:`EXTRA`).

Every run is ``run_digits.sh`` with ``PREPARE=0`` on a data directory prepared once per
variant (``WORK/<plan>/data-<variant>``, the speech itself synthesised once in
``WORK/<plan>/wav``), so all runs share its training and decoding settings: ``--seed 1``, Adam
2e-3 with 200 warm-up updates, ``--stop-time-hours`` = the budget (fairseq's clock, from the
trainer's creation, validation and saving included), beam 5. The runs go through
``examples/runs.py``: ``--jobs N`` runs N at a time, each with ``--threads`` threads (the
table's header states both), the options are those of the other races (``--runs``,
``--budget-seconds``, ``--work``, ``--skip-train``; ``--only`` and ``--minutes`` still work).
Outputs: ``WORK/<plan>/prepare-<variant>.log``, ``WORK/<plan>/<run>.out`` (each run's
``run_digits.sh`` output) and ``WORK/<plan>/<run>/`` (its files), ``WORK/<plan>/table.md``
(WER per test set and held-out voice, parameters, updates, the machine, the date, every
command) and ``WORK/<plan>/curves.png`` (dev loss and accuracy against seconds since
fairseq-train's first log line). ``--skip-train`` rebuilds table and plot from the runs'
``results.txt`` and logs.
"""
import argparse
import os
import re
import shlex
import sys
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from examples import runs
from examples.speech_recognition import augment

HERE = os.path.dirname(os.path.abspath(__file__))
PARAM_TOLERANCE = 0.05
RUN_SCRIPT = "examples/speech_recognition/run_digits.sh"


@dataclass(frozen=True)
class Entry:
    """One run of a plan: the model, and the data variant it trains on."""
    name: str
    arch: str
    model_args: str
    data: str  # data variant name
    prepare_args: str
    train_args: str = ""  # more fairseq-train options (run_digits.sh's TRAIN_ARGS)


# parameters within 5% of s2t_durnn_s with a 256-entry dictionary (tests check it); s2t_berard's
# decoder starts from the mean encoder output, so --decoder-hidden-dim = 2 x --lstm-size
RACE = {
    "durnn": ("s2t_durnn_s", "", ""),
    "transformer": ("s2t_transformer_xs",
                    "--encoder-embed-dim 128 --decoder-embed-dim 128 --encoder-layers 3 "
                    "--decoder-layers 2 --encoder-ffn-embed-dim 256 --decoder-ffn-embed-dim 256 "
                    "--encoder-attention-heads 4 --decoder-attention-heads 4 --conv-channels 128",
                    ""),
    "berard": ("s2t_berard",
               "--input-layers [128,64] --num-blstm-layers 3 --lstm-size 84 "
               "--decoder-num-layers 1 --decoder-hidden-dim 168 --attention-dim 168", ""),
    # two conformer blocks (each two half-step FFNs, attention, a convolution module) with the
    # transformer's decoder: at the transformer's sizes it would have 1.37M parameters
    "conformer": ("s2t_conformer",
                  "--encoder-embed-dim 128 --decoder-embed-dim 128 --encoder-layers 2 "
                  "--decoder-layers 2 --encoder-ffn-embed-dim 128 --decoder-ffn-embed-dim 256 "
                  "--encoder-attention-heads 4 --decoder-attention-heads 4 --conv-channels 128",
                  ""),
    # the trial of an auxiliary CTC loss on the encoder (its output layer is left out of the
    # count: decoding does not use it)
    "durnn-ctc": ("s2t_durnn_s", "--encoder-ctc",
                  "--criterion label_smoothed_cross_entropy_with_ctc --ctc-weight 0.3"),
    # the streaming recogniser (encoder only, CTC output; run_digits.sh trains it with durnn_ctc
    # and decodes it with stream.py), four unidirectional layers of 352 to equal the others
    "durnn-stream": ("s2t_durnn_ctc_s", "--encoder-num-layers 4 --encoder-hidden-size 352", ""),
}
ABLATION_TEXTS = ("--train-texts digit=20,digits=150,number=150,time=40,date=40 "
                  "--eval-texts digit=11,digits=40,number=40,time=15,date=15")
# one effect of the default augmentation at a time, then all of them
ABLATION = {"none": "", **augment.DEFAULT_EFFECTS, "no-specaugment": "--no-specaugment",
            "all": augment.DEFAULT_OPTIONS}
# the options that are off by default, each on top of all the default ones
EXTRA = {"all": augment.DEFAULT_OPTIONS,
         **{f"all+{name}": f"{augment.DEFAULT_OPTIONS} {args}"
            for name, args in (("pad-silence", "--pad-silence 1.0"), ("vtln", "--vtln 0.1"),
                               ("noise-only", "--noise-only 400"))}}
PLANS = {"race": 20, "ablation": 10, "extra": 10}  # minutes per run
RESULT_SET = re.compile(r"^((?:test|dev)_\w+) \(fairseq-generate: (.*)\):$")
RESULT_VOICE = re.compile(r"^\s+(\S+(?: \S+)*)\s+WER\s+([0-9.]+) \((\d+) words, (\d+) "
                          r"utterances\)$")


def plan_entries(plan: str, prepare_args: str = "") -> List[Entry]:
    if plan == "race":
        return [Entry(name, arch, args, "race", prepare_args, train_args)
                for name, (arch, args, train_args) in RACE.items()]
    variants = ABLATION if plan == "ablation" else EXTRA
    return [Entry(name, "s2t_durnn_s", "", name,
                  f"{ABLATION_TEXTS} {args} {prepare_args}".strip())
            for name, args in variants.items()]


def model_options(data_dir: str, arch: str, model_args: str) -> List[str]:
    """fairseq's ``speech_to_text`` task options that build ``arch`` with ``model_args`` on
    ``data_dir`` (its ``config.yaml`` and dictionary)."""
    return [data_dir, "--task", "speech_to_text", "--arch", arch, *shlex.split(model_args)]


def param_count(data_dir: str, arch: str, model_args: str) -> int:
    """Parameters used in decoding: an auxiliary CTC output layer beside a decoder (used in
    training only) is left out; an encoder-only model's CTC layer is its output and counts."""
    from fairseq.models import FairseqEncoderModel

    model = runs.build_model(model_options(data_dir, arch, model_args))
    auxiliary = not isinstance(model, FairseqEncoderModel)
    return sum(p.numel() for name, p in model.named_parameters()
               if not (auxiliary and "ctc_proj" in name))


def check_counts(counts: Dict[str, int]) -> str:
    """One line per run, ValueError if a count is more than 5% away from the first's."""
    ref_name, ref = next(iter(counts.items()))
    lines = []
    for name, n in counts.items():
        lines.append(f"{name:<16} {n:>10,} parameters ({100 * (n / ref - 1):+.1f}% vs {ref_name})")
        if abs(n / ref - 1) > PARAM_TOLERANCE:
            raise ValueError(f"{name}: {n:,} parameters, {100 * (n / ref - 1):+.1f}% vs "
                             f"{ref_name}'s {ref:,}; must be within 5% (resize it in RACE)")
    return "\n".join(lines)


def read_results(path: str) -> Dict[str, Dict[str, Tuple[float, int]]]:
    """``{test set: {voice or "all": (WER %, words)}}`` from ``run_digits.sh``'s
    ``results.txt`` (empty when the run left none)."""
    out, current = {}, None
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            s = RESULT_SET.match(line)
            if s:
                current = out.setdefault(s.group(1), {})
                continue
            v = RESULT_VOICE.match(line)
            if v and current is not None:
                current[v.group(1)] = (float(v.group(2)), int(v.group(3)))
    return out


def table(names: Sequence[str], results: Dict[str, dict], extra: Dict[str, list]) -> str:
    """Markdown: one table per test set, a row per run, a column per held-out voice, then the
    cells of ``extra`` (parameters, updates)."""
    sets = sorted({s for r in results.values() for s in r})
    lines = []
    for test_set in sets:
        voices = sorted({v for r in results.values() for v in r.get(test_set, {}) if v != "all"})
        rows = []
        for name in names:
            got = results.get(name, {}).get(test_set, {})
            rows.append([name] + [f"{got[v][0]:.2f}" if v in got else "-"
                                  for v in voices + ["all"]] + extra.get(name, ["", ""]))
        lines += [f"**{test_set}** (WER %)", "",
                  *runs.markdown_table(["run", *voices, "all", "parameters", "updates"], rows),
                  ""]
    return "\n".join(lines)


def curves_panels(logs: Dict[str, runs.TrainLog]) -> List[runs.Panel]:
    """Dev loss and dev token accuracy against seconds, one curve per run."""
    return [runs.Panel("seconds since fairseq-train's first log line", label,
                       {name: [(s, v) for s, _, v in log.curve(metric, "dev")]
                        for name, log in logs.items()})
            for metric, label in (("loss", "dev loss"), ("accuracy", "dev token accuracy %"))]


def minutes(text: str) -> float:
    """``--minutes M`` as seconds."""
    return 60 * float(text)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("plan", choices=sorted(PLANS))
    known = list(dict.fromkeys([*RACE, *ABLATION, *EXTRA]))
    runs.add_options(ap, known, [], os.path.join(HERE, "work"), None)
    ap.add_argument("--minutes", dest="budget_seconds", type=minutes,
                    help="the budget in minutes (default: race 20, ablation and extra 10)")
    ap.add_argument("--prepare-args", default="",
                    help="more prepare_speech.py options for every data variant")
    return ap


def main(argv=None):
    ap = parser()
    args = ap.parse_args(argv)
    entries = plan_entries(args.plan, args.prepare_args)
    args.runs = args.runs or ",".join(e.name for e in entries)
    names = runs.selected(ap, args, [e.name for e in entries])
    entries = [e for e in entries if e.name in names]
    seconds = args.budget_seconds or 60 * PLANS[args.plan]
    root = os.path.abspath(os.path.join(args.work, args.plan))

    def data_dir(entry):
        return os.path.join(root, f"data-{entry.data}")

    prepares = [runs.Run(f"prepare {e.data}", (
        sys.executable, "-m", "examples.speech_recognition.prepare_speech", "--workdir", root,
        "--data-dir", data_dir(e), *shlex.split(e.prepare_args)),
        os.path.join(root, f"prepare-{e.data}.log"), args.threads)
        for e in {e.data: e for e in entries}.values()]
    if not args.skip_train:  # one after another: the variants share the synthesised speech
        runs.check(prepares, runs.run_all(prepares, jobs=1))
    counts = {e.name: param_count(data_dir(e), e.arch, e.model_args) for e in entries}
    try:
        print(check_counts(counts), flush=True)
    except ValueError as err:
        sys.exit(f"race.py: error: {err}")
    if args.count_only:
        return
    plan = [runs.Run(e.name, ("bash", RUN_SCRIPT), os.path.join(root, f"{e.name}.out"),
                     args.threads, dict(ARCH=e.arch, MODEL_ARGS=e.model_args,
                                        TRAIN_ARGS=e.train_args,
                                        WORK=os.path.join(root, e.name), DATA=data_dir(e),
                                        PREPARE="0", THREADS=str(args.threads),
                                        TRAIN_MINUTES=f"{seconds / 60:g}",
                                        VENV=os.path.dirname(runs.BIN)))
            for e in entries]
    codes = {} if args.skip_train else runs.run_all(plan, args.jobs)
    results, logs, extra = {}, {}, {}
    for run in plan:
        results[run.name] = read_results(os.path.join(run.env["WORK"], "results.txt"))
        logs[run.name] = runs.read_log(os.path.join(run.env["WORK"], "logs", "train.log"))
        extra[run.name] = [f"{counts[run.name]:,}", logs[run.name].updates or "-"]
    header = (f"{args.plan}, {seconds / 60:g} min per run, "
              f"{runs.machine(args.threads, args.jobs, len(plan))}, "
              f"{runs.started(logs.values()):%Y-%m-%d} UTC\n\n")
    commands = [runs.shown(r) for r in prepares + plan]
    text = header + table(names, results, extra) + "\ncommands:\n\n" + "\n".join(
        f"    {c}" for c in commands) + "\n"
    with open(os.path.join(root, "table.md"), "w", encoding="utf-8") as f:
        f.write(text)
    runs.plot(os.path.join(root, "curves.png"), curves_panels(logs))
    print(text + f"\n{os.path.join(root, 'table.md')}, {os.path.join(root, 'curves.png')}")
    runs.check(plan, codes)


if __name__ == "__main__":
    main()
