"""examples/runs.py, the races' runner: at most N runs at a time, failed runs named, fairseq's log
read on one time base (from a real fairseq-train run), and the option names the races share."""
import datetime
import importlib.util
import os
import re

import pytest

from examples import runs
from fairseq_runs import PLUGIN, REPO, TINY_MODEL, preprocess_lm


def fake_run(tmp_path, name, seconds="1", status="0"):
    """A run that stamps its start and end into ``tmp_path/events`` and exits ``status``."""
    script = ('echo "$NAME start $(date +%s.%N)" >> "$EVENTS"; sleep "$SECONDS_"; '
              'echo "$NAME end $(date +%s.%N) $OMP_NUM_THREADS"  >> "$EVENTS"; exit "$STATUS"')
    return runs.Run(name, ("bash", "-c", script), str(tmp_path / "logs" / f"{name}.log"),
                    threads=3, env=dict(NAME=name, EVENTS=str(tmp_path / "events"),
                                        SECONDS_=seconds, STATUS=status))


def most_at_once(events_file) -> int:
    events = sorted((float(t), kind) for _, kind, t, *_ in
                    (line.split() for line in events_file.read_text().splitlines()))
    running, most = 0, 0
    for _, kind in events:
        running += 1 if kind == "start" else -1
        most = max(most, running)
    return most


@pytest.mark.parametrize("jobs, expected", [(2, 2), (1, 1), (0, 3)])
def test_at_most_jobs_runs_at_a_time(tmp_path, jobs, expected):
    plan = [fake_run(tmp_path, n) for n in ("a", "b", "c")]
    assert runs.run_all(plan, jobs) == {"a": 0, "b": 0, "c": 0}
    assert most_at_once(tmp_path / "events") == expected
    lines = (tmp_path / "events").read_text().splitlines()
    assert len(lines) == 6 and all(line.split()[-1] == "3" for line in lines if " end " in line)
    for run in plan:  # one log per run, its command first
        first = open(run.log).readline()
        assert first == f"$ {runs.shown(run)}\n" and "OMP_NUM_THREADS=3" in first
    runs.check(plan, {"a": 0, "b": 0, "c": 0})


def test_a_failed_run_is_named_after_the_others_end(tmp_path):
    plan = [fake_run(tmp_path, "bad", seconds="0", status="3"), fake_run(tmp_path, "good"),
            runs.Run("missing", ("/nonexistent/tool",), str(tmp_path / "missing.log"))]
    codes = runs.run_all(plan, jobs=2)
    assert codes == {"bad": 3, "good": 0, "missing": 127}
    assert "good end" in (tmp_path / "events").read_text()  # it ran to its end
    assert "FileNotFoundError" in (tmp_path / "missing.log").read_text()
    with pytest.raises(SystemExit, match=r"2 of 3 runs failed: bad \(exit 3, log .*bad\.log\), "
                                         r"missing \(exit 127"):
        runs.check(plan, codes)
    with pytest.raises(ValueError, match="names must differ"):
        runs.run_all([plan[0], plan[0]])


@pytest.fixture(scope="module")
def fairseq_log(tmp_path_factory):
    """A real fairseq-train run through run_all: durnn_lm, 12 updates, validated every 4 (and
    at each epoch's end)."""
    tmp = tmp_path_factory.mktemp("fairseq_log")
    data = preprocess_lm(tmp)
    options = [str(data), "--task", "language_modeling", "--sample-break-mode", "eos",
               "--tokens-per-sample", "64", "--arch", "durnn_lm", *TINY_MODEL, "--cpu"]
    run = runs.Run("tiny", (os.path.join(runs.BIN, "fairseq-train"), *options, "--user-dir", PLUGIN,
                            "--optimizer", "adam", "--lr", "0.01", "--max-tokens", "300",
                            "--max-update", "12", "--validate-interval-updates", "4",
                            "--save-dir", str(tmp / "ckpt"), "--log-format", "simple",
                            "--log-interval", "2", "--num-workers", "0", "--seed", "1"),
                   str(tmp / "train.log"), threads=1)
    assert runs.run_all([run]) == {"tiny": 0}, open(run.log).read()[-2000:]
    return run, options


def test_reads_a_real_fairseq_train_log(fairseq_log):
    run, options = fairseq_log
    text = open(run.log).read()
    log = runs.read_log(run.log)
    assert log.command == runs.shown(run)
    assert log.params == runs.count_parameters(options) > 0  # counted once, as fairseq does
    assert f"num. shared model params: {log.params:,}" in text
    assert log.updates == 12 and log.seconds is not None and log.error is None
    curve = log.curve("ppl", "valid")
    updates = [u for _, u, _ in curve]  # every 4 updates and at each epoch's end
    assert {4, 8, 12} <= set(updates) and updates == sorted(updates) and updates[-1] == 12
    assert all(p > 1 for _, _, p in curve)
    assert log.curve("ppl") == curve  # the first subset validated is the default
    # one time base: a point's seconds are from the first stamped line to its valid line
    stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \| \w+ \| \S+ \| (.*)$", text, re.M)
    first = datetime.datetime.fromisoformat(stamps[0][0])
    valid_at = [(datetime.datetime.fromisoformat(t) - first).total_seconds()
                for t, message in stamps if "valid on 'valid' subset" in message]
    assert [s for s, _, _ in curve] == valid_at and log.start == first
    assert valid_at == sorted(valid_at) and valid_at[0] >= 0
    point = log.valid["valid"][0]
    assert {"loss", "ppl", "num_updates"} <= set(point.values)


def test_tables_and_curves(tmp_path, fairseq_log):
    log = runs.read_log(fairseq_log[0].log)
    table = runs.markdown_table(["run", "params", "note"], [["tiny", log.params_shown(), "x"]])
    assert table == ["| run | params | note |", "|---|---:|---|",
                     f"| tiny | {log.params:,} | x |"]
    panels = [runs.Panel("seconds", "valid ppl", {"tiny": [(s, v) for s, _, v in
                                                          log.curve("ppl")]}, log_y=True),
              runs.Panel("updates", "valid ppl", {"tiny": [(u, v) for _, u, v in
                                                          log.curve("ppl")]}, lines=(10,))]
    runs.plot(str(tmp_path / "c.png"), panels, "t")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def load(path):
    spec = importlib.util.spec_from_file_location(path.replace("/", "_")[:-3],
                                                  REPO / "examples" / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path, first", [("language_model/compare.py", []),
                                         ("speech_recognition/race.py", ["race"]),
                                         ("long_range/race.py", ["adding"])])
def test_the_races_share_option_names_and_keep_the_old_ones(path, first):
    parser = load(path).parser()
    new = parser.parse_args(first + ["--runs", "durnn", "--skip-train", "--work", "w",
                                     "--jobs", "0", "--threads", "1", "--budget-seconds", "60"])
    old = parser.parse_args(first + ["--only", "durnn", "--report-only", "--workdir", "w",
                                     "--concurrent", "--threads", "1", "--budget-seconds", "60"])
    assert vars(new) == vars(old)
    assert (new.runs, new.skip_train, new.work, new.jobs, new.budget_seconds) == \
        ("durnn", True, "w", 0, 60)
    if "speech" in path:  # its budget was given in minutes
        assert parser.parse_args(["race", "--minutes", "2"]).budget_seconds == 120


def test_an_unknown_run_is_refused_in_one_line(capsys):
    parser = load("long_range/race.py").parser()
    args = parser.parse_args(["adding", "--runs", "durnn,gru"])
    with pytest.raises(SystemExit):
        runs.selected(parser, args, ["durnn", "lstm"])
    assert "--runs durnn,gru: unknown runs ['gru']; allowed: durnn, lstm" in capsys.readouterr().err
