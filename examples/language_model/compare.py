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
model out of its own budget. Runs are strictly sequential (never two trainings at once), and
the evaluations run after all trainings. On a machine that other jobs share, ``--concurrent``
starts all trainings at once instead, each with ``--threads`` threads (use 1): they then share
whatever the machine has left equally, at the same moments, which sequential runs under a
changing load would not. The learning curve's x axis is the wall time since
the fairseq-train process was started, taken by this script when each ``valid`` line appears
(so it includes start-up, validation and saving). Those validation points come from each
run's own task: stateless blocks for the language_modeling runs, carried state for
``durnn-tbptt``. Validating every N updates charges the faster models more validation time
per second of budget (about 2-3 s per validation of the 109k-token valid set here).

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
whole fairseq-train output), ``<run>/valid.tsv`` (seconds, updates, valid ppl),
``<run>/eval_<mode>_<subset>.log``, ``<run>/checkpoints/``, ``results.md`` (the table, the
machine, the date and every exact command) and ``curves.png`` (valid ppl vs training seconds).
``--skip-train`` rebuilds evaluations, table and plot from existing runs. matplotlib comes
with the ``plots`` extra that ``examples/setup_venv.sh`` installs.
"""
import argparse
import datetime
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
UNITS = {"word": "ppl", "char": "bpc"}
BIN = os.path.join(ROOT, ".venv", "bin")
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


def runs(level):
    """name -> (label, model/task/optimiser/output arguments, evaluation modes)."""
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


def q(cmd):
    return " ".join(shlex.quote(c) for c in cmd)


def rel(p):
    return os.path.relpath(p, ROOT)


def train_cmd(level, name, data, save_dir, budget, val_every):
    _, args, _ = runs(level)[name]
    return ([os.path.join(BIN, "fairseq-train"), rel(data), "--user-dir", "durnn_plugin"]
            + args + LEVELS[level]["train_options"]
            + ["--max-epoch", "1000", "--stop-time-hours", repr(budget / 3600),
               "--validate-interval-updates", str(val_every),
               "--save-interval-updates", str(val_every), "--keep-interval-updates", "1",
               "--no-epoch-checkpoints", "--save-dir", rel(save_dir),
               "--log-format", "simple", "--log-interval", "50",
               "--seed", "1", "--cpu", "--num-workers", "0"])


def eval_cmd(level, data, ckpt, mode, subset):
    cmd = [os.path.join(BIN, "fairseq-eval-lm"), rel(data), "--user-dir", "durnn_plugin",
           "--path", rel(ckpt), "--gen-subset", subset, "--cpu", "--num-workers", "0"]
    if mode == "stateless":
        return cmd + data_args(level, False)[:4] + ["--max-tokens",
                                                    str(LEVELS[level]["max_tokens"]),
                                                    "--context-window", "0"]
    return cmd + data_args(level, True)


def env(threads):
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1")


VALID_RE = re.compile(r"\| valid \| .*\| ppl ([0-9.]+) .*\| num_updates (\d+)")


def training_started(run_dir):
    """When ``train`` started this run: ``seconds.txt`` is written at its end."""
    path = os.path.join(run_dir, "seconds.txt")
    return datetime.datetime.utcfromtimestamp(os.path.getmtime(path) - float(open(path).read()))


def train(name, args, run_dir):
    save_dir = os.path.join(run_dir, "checkpoints")
    shutil.rmtree(run_dir, ignore_errors=True)  # a leftover checkpoint_last.pt would resume
    os.makedirs(run_dir)
    cmd = train_cmd(args.level, name, args.data, save_dir, args.budget_seconds,
                    args.validate_interval_updates)
    cmd += shlex.split({"durnn": args.durnn_options, "durnn-tbptt": args.tbptt_options}.get(name, ""))
    print(f"\n== train {name} ({datetime.datetime.utcnow():%H:%M:%S} UTC): {q(cmd)}", flush=True)
    t0 = time.time()
    with open(os.path.join(run_dir, "train.log"), "w") as log, \
            open(os.path.join(run_dir, "valid.tsv"), "w") as tsv:
        tsv.write("seconds\tnum_updates\tvalid_ppl\n")
        p = subprocess.Popen(cmd, cwd=ROOT, env=env(args.threads), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, bufsize=1)
        for line in p.stdout:
            log.write(line)
            m = VALID_RE.search(line)
            if m:
                s = time.time() - t0
                tsv.write(f"{s:.1f}\t{m.group(2)}\t{m.group(1)}\n")
                tsv.flush()
                print(f"   {name:12s} {s:6.1f}s  updates {m.group(2):>5}  valid ppl {m.group(1)}",
                      flush=True)
        rc = p.wait()
    with open(os.path.join(run_dir, "command.txt"), "w") as f:
        f.write(q(cmd) + "\n")
    with open(os.path.join(run_dir, "budget.txt"), "w") as f:
        f.write(f"{args.budget_seconds:g}\n")
    with open(os.path.join(run_dir, "seconds.txt"), "w") as f:
        f.write(f"{time.time() - t0:.1f}\n")
    if rc != 0 or not os.path.exists(os.path.join(save_dir, "checkpoint_best.pt")):
        # keep going with the other runs; the table reports the failure
        print(f"fairseq-train {name} failed (rc {rc}); see {run_dir}/train.log", flush=True)
        with open(os.path.join(run_dir, "failed.txt"), "w") as f:
            f.write(f"rc {rc}\n")


def parse_train(run_dir):
    text = open(os.path.join(run_dir, "train.log")).read()
    params = re.search(r"num\. shared model params: ([0-9,]+)", text).group(1)
    updates = (re.findall(r"num_updates[ =](\d+)", text) or ["0"])[-1]
    done = re.search(r"done training in ([0-9.]+) seconds", text)
    curve = []
    for row in open(os.path.join(run_dir, "valid.tsv")).read().splitlines()[1:]:
        s, u, ppl = row.split("\t")
        curve.append((float(s), int(u), float(ppl)))
    return dict(params=params, updates=int(updates), fairseq_s=done.group(1) if done else "?",
                curve=curve, failed=os.path.exists(os.path.join(run_dir, "failed.txt")),
                budget=open(os.path.join(run_dir, "budget.txt")).read().strip(), cmd=open(os.path.join(run_dir, "command.txt")).read().strip())


def evaluate(name, mode, subset, args, run_dir, cached=True):
    log = os.path.join(run_dir, f"eval_{mode}_{subset}.log")
    cmd = eval_cmd(args.level, args.data, os.path.join(run_dir, "checkpoints", "checkpoint_best.pt"),
                   mode, subset)
    if not (cached and os.path.exists(log) and "Perplexity: " in open(log).read()):
        with open(log, "w") as f:
            rc = subprocess.call(cmd, cwd=ROOT, env=env(args.threads), stdout=f,
                                 stderr=subprocess.STDOUT)
        if rc != 0:
            sys.exit(f"fairseq-eval-lm failed: {q(cmd)}; see {log}")
    return perplexity_from_log(open(log).read()), q(cmd)


def perplexity_from_log(text):
    """Perplexity per token from fairseq-eval-lm's last line, computed from its ``Loss (base 2)``
    (printed with 4 decimals) rather than read from its ``Perplexity`` (2 decimals): at character
    level log2(3.83) and log2(3.835) differ by 0.002 bits per character."""
    m = re.search(r"Loss \(base 2\): ([0-9.]+|nan|inf)", text)
    return 2.0 ** float(m.group(1))


def count_only(level, data):
    """Build each model in this process, as fairseq-train would, and print its size."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    for name, (_, run_args, _) in runs(level).items():
        argv = ([data, "--user-dir", os.path.join(ROOT, "durnn_plugin")] + run_args
                + LEVELS[level]["train_options"] + ["--cpu"])
        a = options.parse_args_and_arch(options.get_training_parser(), input_args=argv)
        cfg = convert_namespace_to_omegaconf(a)
        model = tasks.setup_task(cfg.task).build_model(cfg.model)
        print(f"{name:12s} {sum(p.numel() for p in model.parameters()):,}")


def prepare(level, data):
    """Write the Brown split of ``level`` and binarise it into ``data`` (skipped if present)."""
    if os.path.exists(os.path.join(data, "dict.txt")):
        return
    work = os.path.join(ROOT, "examples/language_model/work")
    text = os.path.join(work, "brown" if level == "word" else "brown-char")
    subprocess.check_call([os.path.join(BIN, "python"), os.path.join(HERE, "prepare_brown.py"),
                           "--workdir", work, "--level", level])
    subprocess.check_call([os.path.join(BIN, "fairseq-preprocess"), "--only-source",
                           "--trainpref", os.path.join(text, "train.txt"),
                           "--validpref", os.path.join(text, "valid.txt"),
                           "--testpref", os.path.join(text, "test.txt"),
                           "--destdir", data, "--workers", "2"], env=env(2))


def in_units(level, ppl):
    """Perplexity per token -> the reported unit: ppl (word) or bits per character (char)."""
    return ppl if level == "word" else math.log2(ppl)


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def plot(level, rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, label, info in rows:
        xs = [c[0] for c in info["curve"]]
        ys = [in_units(level, c[2]) for c in info["curve"]]
        ax.plot(xs, ys, marker="o", label=f"{label} ({info['params']} params)")
    ax.set_xlabel("seconds since fairseq-train started (training + validation + saving)")
    unit = UNITS[level]
    ax.set_ylabel(f"valid {unit} (fairseq-train validation)")
    ax.set_yscale("log")
    ax.set_title(f"Brown, {level} level, CPU: valid {unit} vs wall time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget-seconds", type=float, default=300,
                    help="wall-clock training budget per run (default 300)")
    ap.add_argument("--level", choices=sorted(LEVELS), default="word")
    ap.add_argument("--data", help="binarised data (default: work/brown-bin or work/brown-char-bin, "
                    "prepared when missing)")
    ap.add_argument("--work", help="output directory (default: work/compare or work/compare-char)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--validate-interval-updates", type=int, default=150)
    ap.add_argument("--runs", default=",".join(ORDER), help="comma-separated subset of " + ",".join(ORDER))
    ap.add_argument("--skip-train", action="store_true", help="reuse existing runs in --work")
    ap.add_argument("--count-only", action="store_true")
    ap.add_argument("--tbptt-options", default="",
                    help="more fairseq-train options for durnn-tbptt, e.g. '--state-cache'")
    ap.add_argument("--durnn-options", default="",
                    help="more fairseq-train options for the stateless durnn run, e.g. '--u-gamma 1.0'")
    ap.add_argument("--concurrent", action="store_true",
                    help="train all runs at the same time (each with --threads threads)")
    args = ap.parse_args()
    work = os.path.join(ROOT, "examples/language_model/work")
    args.data = args.data or os.path.join(work, LEVELS[args.level]["data"])
    args.work = args.work or os.path.join(work, "compare" + ("" if args.level == "word" else "-char"))
    prepare(args.level, args.data)
    if args.count_only:
        return count_only(args.level, args.data)
    names = [n for n in ORDER if n in args.runs.split(",")]
    os.makedirs(args.work, exist_ok=True)
    started = datetime.datetime.utcnow()
    if args.skip_train:  # the date of the training runs: when the first one started
        started = min(training_started(os.path.join(args.work, n)) for n in names)
    elif args.concurrent:
        with ThreadPoolExecutor(len(names)) as pool:
            list(pool.map(lambda n: train(n, args, os.path.join(args.work, n)), names))
    else:
        for name in names:  # strictly one after the other
            train(name, args, os.path.join(args.work, name))
    print(f"\n== evaluate ({datetime.datetime.utcnow():%H:%M:%S} UTC)", flush=True)
    rows, table, cmds = [], [], []
    for name in names:
        run_dir = os.path.join(args.work, name)
        info = parse_train(run_dir)
        label = runs(args.level)[name][0]
        rows.append((name, label, info))
        cmds.append(f"- `{name}` train: `{info['cmd']}`")
        if info["failed"]:
            err = (re.findall(r"^\w*Error: .*$", open(os.path.join(run_dir, "train.log")).read(),
                              re.M) or ["failed"])[-1]
            table.append(f"| {label} | - | {info['params']} | {info['updates']} | "
                         f"FAILED: {err} | - | {info['budget']} s | `{name}` |")
            continue
        for mode in runs(args.level)[name][2]:
            vppl, vcmd = evaluate(name, mode, "valid", args, run_dir, cached=args.skip_train)
            tppl, tcmd = evaluate(name, mode, "test", args, run_dir, cached=args.skip_train)
            cmds.append(f"- `{name}` eval {mode}: `{tcmd}` (and `--gen-subset valid`)")
            table.append(f"| {label} | {mode} | {info['params']} | {info['updates']} | "
                         f"{in_units(args.level, vppl):.3f} | {in_units(args.level, tppl):.3f} | "
                         f"{info['budget']} s "
                         f"(fairseq {info['fairseq_s']} s) | `{name}` |")
    machine = f"{cpu_model()}, {os.cpu_count()} cores, {args.threads} threads"
    extra_options = args.durnn_options or args.tbptt_options
    unit = UNITS[args.level]
    out = [f"# Brown {args.level}-level LM race (compare.py)", "",
           f"Command: `{q([sys.executable and rel(sys.executable)] + sys.argv)}`  ",
           f"Machine: {machine}  ",
           f"Date: {started:%Y-%m-%d %H:%M} UTC (runs "
           f"{'concurrent' if args.concurrent else 'sequential'}, CPU, --seed 1"
           f"{' unless the extra options set another' if extra_options else ''})",
           "",
           f"| model | eval | params | updates | valid {unit} | test {unit} | budget | run |",
           "|---|---|---:|---:|---:|---:|---|---|"] + table + [
           "", f"eval: stateless = `--task language_modeling --context-window 0` "
           f"({LEVELS[args.level]['tokens']}-token blocks, no carried state); stateful = "
           "`--task durnn_language_modeling --batch-size 32` (state carried along 32 streams). "
           f"Test/valid {unit} from fairseq-eval-lm on "
           "checkpoint_best.pt; params = fairseq-train's \"num. shared model params\".", "",
           "Exact commands (run from the repository root, OMP_NUM_THREADS=MKL_NUM_THREADS="
           f"{args.threads}):", ""] + cmds + ["", "Learning curves: `curves.png`; points in "
           "`<run>/valid.tsv` (seconds since fairseq-train started, updates, valid ppl per token)."]
    with open(os.path.join(args.work, "results.md"), "w") as f:
        f.write("\n".join(out) + "\n")
    plot(args.level, rows, os.path.join(args.work, "curves.png"))
    print("\n".join(out[:9 + len(table)]))
    print(f"\nresults: {rel(os.path.join(args.work, 'results.md'))}  "
          f"curves: {rel(os.path.join(args.work, 'curves.png'))}")


if __name__ == "__main__":
    main()
