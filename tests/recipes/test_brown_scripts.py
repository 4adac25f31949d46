"""The Brown example scripts' pure parts: the character-level text and the race's units."""
import importlib.util
import math

from fairseq_runs import REPO


def load(name):
    path = REPO / "examples" / "language_model" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_char_level_text(tmp_path):
    prepare = load("prepare_brown")
    assert prepare.char_line(["the", "jury", "said"]) == "t h e _ j u r y _ s a i d"
    data = {"train": [["a", "bc"]], "valid": [["x"]], "test": [["y", "z"], ["q"]]}
    prepare.write_chars(data, {"train": 1, "valid": 1, "test": 1}, str(tmp_path))
    assert (tmp_path / "test.txt").read_text() == "y _ z\nq\n"


def test_race_units_and_commands():
    compare = load("compare")
    assert compare.in_units("word", 150.0) == 150.0
    assert math.isclose(compare.in_units("char", 4.0), 2.0)
    log = "INFO:fairseq_cli.eval_lm:Loss (base 2): 1.9389, Perplexity: 3.83\n"
    assert math.isclose(compare.in_units("char", compare.perplexity_from_log(log)), 1.9389)
    for level in compare.LEVELS:
        for name in compare.models(level):
            cmd = compare.train_cmd(level, name, "data", "save", 60, 100)
            assert cmd[cmd.index("--stop-time-hours") + 1] == repr(60 / 3600)
            stateful = name == "durnn-tbptt"
            assert ("durnn_language_modeling" in cmd) == stateful
        assert "--context-window" in compare.eval_cmd(level, "d", "c.pt", "stateless", "test")


TRAIN_LOG = "".join(line + "\n" for line in [  # fairseq-train's --log-format simple lines
    "2026-12-07 22:52:50 | INFO | fairseq_cli.train | num. shared model params: 1,568 "
    "(num. trained: 1,568)",
    "2026-12-07 22:53:05 | INFO | valid | epoch 001 | valid on 'valid' subset | loss 5.066 | "
    "ppl 33.5 | wps 0 | wpb 72 | bsz 24 | num_updates 4",
    "2026-12-07 22:53:20 | INFO | train_inner | epoch 002:      2 / 6 loss=4.9, ppl=29.8, "
    "num_updates=6",
    "2026-12-07 22:53:35 | INFO | valid | epoch 002 | valid on 'valid' subset | loss 4.679 | "
    "ppl 25.61 | wps 0 | wpb 72 | bsz 24 | num_updates 8 | best_loss 4.679",
    "2026-12-07 22:53:36 | INFO | fairseq_cli.train | done training in 45.2 seconds"])


def test_race_report_from_existing_runs(tmp_path, monkeypatch):
    """--skip-train (alias --report-only) rebuilds table, commands and curves from the runs'
    logs; a run without a best checkpoint is reported failed with its error line."""
    compare = load("compare")
    data, work = tmp_path / "data", tmp_path / "work"
    data.mkdir()
    (data / "dict.txt").write_text("w 1\n")
    for name in ("durnn", "lstm"):
        (work / name / "checkpoints").mkdir(parents=True)
    (work / "durnn" / "train.log").write_text("$ fairseq-train d --arch durnn_lm\n" + TRAIN_LOG)
    (work / "durnn" / "checkpoints" / "checkpoint_best.pt").write_bytes(b"")
    for mode, loss in (("stateless", 7.0), ("stateful", 6.5)):
        for subset in ("valid", "test"):
            (work / "durnn" / f"eval_{mode}_{subset}.log").write_text(
                f"INFO:fairseq_cli.eval_lm:Loss (base 2): {loss:.4f}, "
                f"Perplexity: {2 ** loss:.2f}\n")
    (work / "lstm" / "train.log").write_text(TRAIN_LOG.splitlines()[0] + "\nValueError: x\n")
    monkeypatch.setattr("sys.argv", ["compare.py", "--data", str(data), "--work", str(work),
                                     "--only", "durnn,lstm", "--report-only"])
    compare.main()
    text = (work / "results.md").read_text()
    label = "durnn_lm (language_modeling)"
    assert f"| {label} | stateless | 1,568 | 8 | 128.000 | 128.000 | 45.2 s |" in text
    assert f"| {label} | stateful | 1,568 | 8 | 90.510 | 90.510 | 45.2 s |" in text
    assert "| lstm_lm | - | 1,568 | 0 | FAILED: ValueError: x | - | ? s | `lstm` |" in text
    assert "- `durnn` train: `fairseq-train d --arch durnn_lm`" in text
    assert "Date: 2026-12-07 22:52 UTC" in text
    assert (work / "curves.png").read_bytes()[:4] == b"\x89PNG"
