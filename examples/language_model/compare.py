"""A fair race on Brown: durnn_lm vs fairseq's lstm_lm and transformer_lm, word or char level.

Run from the repository root, with the project's venv (the Brown split is written and
binarised first when missing, with prepare_brown.py and fairseq-preprocess)::

    .venv/bin/python examples/language_model/compare.py                  # 300 s per run
    .venv/bin/python examples/language_model/compare.py --budget-seconds 600
    .venv/bin/python examples/language_model/compare.py --count-only     # parameter counts only
    .venv/bin/python examples/language_model/compare.py --level char     # bits per character

Word level (below): 128-token blocks, adaptive softmax. Character level (``--level char``,
``prepare_brown.py --level char``: characters with ``_`` between words): 256-character blocks,
8,192 characters per batch (32 blocks), plain softmax (``--criterion cross_entropy``), models
of about 0.85M parameters (durnn_lm embed 128 / hidden 768, lstm_lm embed 128 / hidden 240,
transformer_lm d=192 / FFN 704), validation during training on the first 20 valid batches
(``--max-valid-steps 20``; the final evaluation uses the whole sets); results in bits per
character = log2(per-character perplexity), ``</s>`` (end of sentence) counted as a character.

What is compared (all on CPU, ``--cpu --num-workers 0``, 2 threads, ``--seed 1``):

* ``durnn``        durnn_lm (this plugin) with the settings of run_brown.sh, stateless task
                   ``language_modeling`` (blocks of 128 tokens, ``--sample-break-mode none``,
                   ``--max-tokens 4096``: 32 blocks per batch, no state between blocks).
* ``durnn-tbptt``  the same model and optimiser on the plugin's stateful task
                   ``durnn_language_modeling`` (``--batch-size 32 --tokens-per-sample 128``:
                   32 streams, the state carried from one 128-token segment to the next),
                   except ``--u-gamma 1.0``: with the default bound abs(u) <= 2^(1/100)
                   = 1.0069 a carried long-term state can grow by 1.0069^t, which overflows
                   float32 after about 12,800 tokens of a stream, i.e. exactly 100 updates
                   (the run with the default diverged there, "gradients are Nan/Inf", on
                   2026-11-22). abs(u) <= 1 adds no parameters.
* ``lstm``         fairseq's ``lstm_lm`` (2 layers, embeddings 256, hidden 320; hidden 320
                   rather than 512 so the parameter count matches), same optimiser as durnn.
* ``transformer``  fairseq's ``transformer_lm`` (2 pre-LN layers, d=256, FFN 1024, 4 heads,
                   dropout 0.1, Adam (0.9, 0.98), weight decay 0.01, lr 1e-3 with 200 warm-up
                   updates, inverse_sqrt; the usual fairseq LM recipe with the warm-up shortened
                   to suit a few-minute budget).

All four use the same adaptive softmax (``--criterion adaptive_loss --adaptive-softmax-cutoff
2000,10000``, factor 4, ``--ddp-backend legacy_ddp``) and untied 256-dimensional input
embeddings, so the output layer and the embedding table cost the same; sizes were chosen so
the counts fairseq-train prints ("num. shared model params") are within 10% of each other
(the table lists them; ``--count-only`` builds the models and prints the counts without
training).

Fairness of the clock: each run gets ``--stop-time-hours BUDGET/3600``; fairseq measures that
from the trainer's creation and includes validation and checkpoint time, so validating every
``--validate-interval-updates`` updates (and saving ``checkpoint_best.pt`` then) costs every
model out of its own budget. By default runs are strictly sequential (``--jobs 1``: never two
trainings at once), and the evaluations run after all trainings. On a machine that other jobs
share, ``--jobs 0`` (or ``--concurrent``) starts all trainings at once instead, each with
``--threads`` threads (use 1): they then share whatever the machine has left equally, at the
same moments, which sequential runs under a changing load would not. The learning curve's x
axis is the time since the first time-stamped line of each fairseq-train log (examples/runs.py:
training, validation and saving). Those validation points come from each run's own task:
stateless blocks for the language_modeling runs, carried state for ``durnn-tbptt``. Validating
every N updates charges the faster models more validation time per second of budget (about 2-3
s per validation of the 109k-token valid set here).

Evaluation: ``fairseq-eval-lm --user-dir durnn_plugin`` (the plugin allow-lists
``argparse.Namespace`` for torch's default ``weights_only`` loader, which lstm_lm checkpoints need:
they hold their config as a Namespace) on ``checkpoint_best.pt`` (the checkpoint with the lowest
validation loss among all validations), valid and test:

* stateless: ``--task language_modeling --tokens-per-sample 128 --context-window 0``
  (every 128-token block starts from zero state / no context);
* stateful: ``--task durnn_language_modeling --batch-size 32 --tokens-per-sample 128`` (state
  carried along 32 streams). Both durnn checkpoints are evaluated both ways, which separates
  the effect of training with carried state from the effect of evaluating with it.

Perplexity is per token, ``</s>`` included, ``<unk>`` counted as a word (as in run_brown.sh).

``--tbptt-options "..."`` appends fairseq-train options to the ``durnn-tbptt`` run only (e.g.
``--stream-groups 64 --shuffle-streams`` or ``--state-cache``, which both tie stateless training
on Brown with 128-token segments; with ``--tokens-per-sample 32`` or ``64`` added to both runs
``--state-cache`` wins; examples/language_model/RESULTS.md lists what was tried). ``--durnn-options "..."`` does the same
for the stateless ``durnn`` run (e.g. ``--u-gamma 1.0``, so both durnn runs have the same bound).

Outputs in ``examples/language_model/work/compare/`` (``--work``): ``<run>/train.log`` (the
command, then the whole fairseq-train output), ``<run>/eval_<mode>_<subset>.log``,
``<run>/checkpoints/``, ``results.md`` (the table, the machine, the date and every exact
command) and ``curves.png`` (valid ppl or bpc vs training seconds). ``--skip-train`` rebuilds
evaluations, table and plot from existing runs. matplotlib comes with the ``plots`` extra that
``examples/setup_venv.sh`` installs.
"""
import argparse
import math
import os
import re
import shlex
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
from examples import runs  # noqa: E402  (the repository root, put first just above)

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")
UNITS = {"word": "ppl", "char": "bpc"}
RNN_OPTIM = ["--optimizer", "adam", "--adam-betas", "(0.9, 0.999)", "--clip-norm", "0.25",
             "--lr", "0.004", "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "100",
             "--warmup-init-lr", "1e-4"]
TRANSFORMER_OPTIM = ["--dropout", "0.1", "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)",
                     "--weight-decay", "0.01", "--clip-norm", "0.0", "--lr", "0.001",
                     "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "200",
                     "--warmup-init-lr", "1e-07"]


def lstm_model(embed, hidden, dropout):
    return ["--arch", "lstm_lm", "--decoder-embed-dim", str(embed), "--decoder-hidden-size",
            str(hidden), "--decoder-out-embed-dim", str(hidden), "--decoder-layers", "2",
            "--dropout", str(dropout)]


def transformer_model(dim, ffn):
    return ["--arch", "transformer_lm", "--decoder-layers", "2", "--decoder-embed-dim", str(dim),
            "--decoder-input-dim", str(dim), "--decoder-output-dim", str(dim),
            "--decoder-ffn-embed-dim", str(ffn), "--decoder-attention-heads", "4"]


# Per level: data, block length, batch, output layer and training-only options, and each
# model's size (parameter counts matched within 10%, see --count-only).
LEVELS = {
    "word": dict(
        data="brown-bin", tokens=128, max_tokens=4096,
        train_options=["--criterion", "adaptive_loss", "--adaptive-softmax-cutoff", "2000,10000",
                       "--ddp-backend", "legacy_ddp"],
        durnn=["--embed-dim", "256", "--hidden-size", "512", "--dropout", "0.4",
               "--embed-dropout", "0.2"],
        lstm=lstm_model(256, 320, 0.2), transformer=transformer_model(256, 1024)),
    "char": dict(
        data="brown-char-bin", tokens=256, max_tokens=8192,
        train_options=["--criterion", "cross_entropy", "--max-valid-steps", "20"],
        durnn=["--embed-dim", "128", "--hidden-size", "768", "--dropout", "0.2",
               "--embed-dropout", "0.0"],
        lstm=lstm_model(128, 240, 0.2), transformer=transformer_model(192, 704)),
}


def data_args(level, stateful):
    spec = LEVELS[level]
    if stateful:  # 32 streams, the state carried from one block to the next
        return ["--task", "durnn_language_modeling", "--batch-size", "32",
                "--tokens-per-sample", str(spec["tokens"])]
    return ["--task", "language_modeling", "--tokens-per-sample", str(spec["tokens"]),
            "--sample-break-mode", "none", "--max-tokens", str(spec["max_tokens"])]


def models(level):
    """name -> (label, model/task/optimiser arguments, evaluation modes)."""
    spec = LEVELS[level]
    durnn = ["--arch", "durnn_lm", "--num-layers", "2"] + spec["durnn"] + RNN_OPTIM
    return {
        "durnn": ("durnn_lm (language_modeling)", data_args(level, False) + durnn,
                  ["stateless", "stateful"]),
        "durnn-tbptt": ("durnn_lm (durnn_language_modeling, TBPTT)",
                        data_args(level, True) + durnn + ["--u-gamma", "1.0"],
                        ["stateful", "stateless"]),
        "lstm": ("lstm_lm", data_args(level, False) + spec["lstm"] + RNN_OPTIM, ["stateless"]),
        "transformer": ("transformer_lm",
                        data_args(level, False) + spec["transformer"] + TRANSFORMER_OPTIM,
                        ["stateless"]),
    }


ORDER = ["durnn", "durnn-tbptt", "lstm", "transformer"]


def model_args(level, name, data):
    """fairseq-train's data, model and task options of run ``name``."""
    return [data] + models(level)[name][1] + LEVELS[level]["train_options"]


def train_cmd(level, name, data, save_dir, budget, val_every):
    return ([os.path.join(runs.BIN, "fairseq-train"), "--user-dir", "durnn_plugin"]
            + model_args(level, name, runs.rel(data))
            + ["--max-epoch", "1000", "--stop-time-hours", repr(budget / 3600),
               "--validate-interval-updates", str(val_every),
               "--save-interval-updates", str(val_every), "--keep-interval-updates", "1",
               "--no-epoch-checkpoints", "--save-dir", runs.rel(save_dir),
               "--log-format", "simple", "--log-interval", "50",
               "--seed", "1", "--cpu", "--num-workers", "0"])


def eval_cmd(level, data, ckpt, mode, subset):
    cmd = [os.path.join(runs.BIN, "fairseq-eval-lm"), runs.rel(data), "--user-dir",
           "durnn_plugin", "--path", runs.rel(ckpt), "--gen-subset", subset, "--cpu",
           "--num-workers", "0"]
    if mode == "stateless":
        return cmd + data_args(level, False)[:4] + ["--max-tokens",
                                                    str(LEVELS[level]["max_tokens"]),
                                                    "--context-window", "0"]
    return cmd + data_args(level, True)


def perplexity_from_log(text):
    """Perplexity per token from fairseq-eval-lm's last line, computed from its ``Loss (base 2)``
    (printed with 4 decimals) rather than read from its ``Perplexity`` (2 decimals): at character
    level log2(3.83) and log2(3.835) differ by 0.002 bits per character."""
    m = re.search(r"Loss \(base 2\): ([0-9.]+|nan|inf)", text)
    return 2.0 ** float(m.group(1))


def prepare(level, data):
    """Write the Brown split of ``level`` and binarise it into ``data`` (skipped if present)."""
    if os.path.exists(os.path.join(data, "dict.txt")):
        return
    text = os.path.join(WORK, "brown" if level == "word" else "brown-char")
    subprocess.check_call([sys.executable, os.path.join(HERE, "prepare_brown.py"),
                           "--workdir", WORK, "--level", level])
    subprocess.check_call([os.path.join(runs.BIN, "fairseq-preprocess"), "--only-source",
                           "--trainpref", os.path.join(text, "train.txt"),
                           "--validpref", os.path.join(text, "valid.txt"),
                           "--testpref", os.path.join(text, "test.txt"),
                           "--destdir", data, "--workers", "2"])


def in_units(level, ppl):
    """Perplexity per token -> the reported unit: ppl (word) or bits per character (char)."""
    return ppl if level == "word" else math.log2(ppl)


def evaluations(args, name):
    """The fairseq-eval-lm runs of run ``name``'s best checkpoint: {mode: {subset: Run}}."""
    ckpt = os.path.join(args.work, name, "checkpoints", "checkpoint_best.pt")
    return {mode: {subset: runs.Run(f"{name} eval {mode} {subset}",
                                    tuple(eval_cmd(args.level, args.data, ckpt, mode, subset)),
                                    os.path.join(args.work, name, f"eval_{mode}_{subset}.log"),
                                    args.threads)
                   for subset in ("valid", "test")}
            for mode in models(args.level)[name][2]}


def evaluated(run):
    """The result of an evaluation's log, None if it holds none."""
    if not os.path.exists(run.log):
        return None
    with open(run.log) as f:
        text = f.read()
    return perplexity_from_log(text) if "Perplexity: " in text else None


def parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    runs.add_options(ap, ORDER, ORDER, None, 300,
                     work_help="work/compare, or work/compare-char at --level char")
    ap.add_argument("--level", choices=sorted(LEVELS), default="word")
    ap.add_argument("--data", help="binarised data (default: work/brown-bin or "
                    "work/brown-char-bin, prepared when missing)")
    ap.add_argument("--validate-interval-updates", type=int, default=150)
    ap.add_argument("--tbptt-options", default="",
                    help="more fairseq-train options for durnn-tbptt, e.g. '--state-cache'")
    ap.add_argument("--durnn-options", default="", help="more fairseq-train options for the "
                    "stateless durnn run, e.g. '--u-gamma 1.0'")
    return ap


def main():
    ap = parser()
    args = ap.parse_args()
    names = runs.selected(ap, args, ORDER)
    args.data = args.data or os.path.join(WORK, LEVELS[args.level]["data"])
    args.work = args.work or os.path.join(WORK, "compare" + ("" if args.level == "word"
                                                             else "-char"))
    prepare(args.level, args.data)
    if args.count_only:
        for name in names:
            count = runs.count_parameters(model_args(args.level, name, args.data) + ["--cpu"])
            print(f"{name:12s} {count:,}")
        return
    extra = {"durnn": args.durnn_options, "durnn-tbptt": args.tbptt_options}
    plan = [runs.Run(name, tuple(train_cmd(args.level, name, args.data,
                                           os.path.join(args.work, name, "checkpoints"),
                                           args.budget_seconds, args.validate_interval_updates)
                                 + shlex.split(extra.get(name, ""))),
                     os.path.join(args.work, name, "train.log"), args.threads)
            for name in names]
    codes = {}
    if not args.skip_train:
        for name in names:  # a leftover checkpoint_last.pt would resume
            shutil.rmtree(os.path.join(args.work, name), ignore_errors=True)
        codes = runs.run_all(plan, args.jobs)
    logs = {run.name: runs.read_log(run.log) for run in plan}
    failed = {name for name in names if codes.get(name) or not os.path.exists(
        os.path.join(args.work, name, "checkpoints", "checkpoint_best.pt"))}
    evals = {name: evaluations(args, name) for name in names if name not in failed}
    todo = [r for by_mode in evals.values() for by_subset in by_mode.values()
            for r in by_subset.values() if not (args.skip_train and evaluated(r))]
    codes.update(runs.run_all(todo, args.jobs))
    unit = UNITS[args.level]
    rows, commands = [], []
    for name, run in zip(names, plan):
        label, log = models(args.level)[name][0], logs[name]
        commands.append(f"- `{name}` train: `{log.command or runs.shown(run)}`")
        params, trained = log.params_shown(), f"{log.seconds or '?'} s"
        if name in failed:
            rows.append([label, "-", params, log.updates, f"FAILED: {log.error or 'failed'}",
                         "-", trained, f"`{name}`"])
        for mode, by_subset in evals.get(name, {}).items():
            got = {s: evaluated(r) for s, r in by_subset.items()}
            got = {s: "-" if v is None else f"{in_units(args.level, v):.3f}"
                   for s, v in got.items()}
            commands.append(f"- `{name}` eval {mode}: `{runs.shown(by_subset['test'])}` "
                            "(and `--gen-subset valid`)")
            rows.append([label, mode, params, log.updates, got["valid"], got["test"], trained,
                         f"`{name}`"])
    started = runs.started(logs.values())
    extra_options = args.durnn_options or args.tbptt_options
    out = [f"# Brown {args.level}-level LM race (compare.py)", "",
           f"Command: `{runs.command_line()}`  ",
           f"Machine: {runs.machine(args.threads, args.jobs, len(names))}  ",
           f"Date: {started:%Y-%m-%d %H:%M} UTC ({args.budget_seconds:g} s per run, CPU, "
           f"--seed 1{' unless the extra options set another' if extra_options else ''})", ""]
    out += runs.markdown_table(["model", "eval", "params", "updates", f"valid {unit}",
                                f"test {unit}", "training", "run"], rows)
    out += ["", f"eval: stateless = `--task language_modeling --context-window 0` "
            f"({LEVELS[args.level]['tokens']}-token blocks, no carried state); stateful = "
            "`--task durnn_language_modeling --batch-size 32` (state carried along 32 streams). "
            f"Test/valid {unit} from fairseq-eval-lm on checkpoint_best.pt; params = "
            "fairseq-train's \"num. shared model params\"; training = fairseq's \"done training "
            "in\".", "", "Exact commands (run from the repository root):", ""] + commands
    out += ["", "Learning curves: `curves.png` (valid points of each `<run>/train.log`)."]
    with open(os.path.join(args.work, "results.md"), "w") as f:
        f.write("\n".join(out) + "\n")
    series = {f"{models(args.level)[n][0]} ({logs[n].params_shown()} params)":
              [(s, in_units(args.level, v)) for s, _, v in logs[n].curve("ppl", "valid")]
              for n in names}
    runs.plot(os.path.join(args.work, "curves.png"), [runs.Panel(
        "seconds since fairseq-train's first log line (training + validation + saving)",
        f"valid {unit} (fairseq-train validation)", series, log_y=True)],
        f"Brown, {args.level} level, CPU: valid {unit} vs wall time")
    print("\n".join(out[:8 + len(rows)]))
    print(f"\nresults: {runs.rel(os.path.join(args.work, 'results.md'))}  "
          f"curves: {runs.rel(os.path.join(args.work, 'curves.png'))}")
    runs.check(plan + todo, codes)


if __name__ == "__main__":
    main()
