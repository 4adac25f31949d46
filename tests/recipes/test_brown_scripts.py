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
        for name in compare.runs(level):
            cmd = compare.train_cmd(level, name, "data", "save", 60, 100)
            assert cmd[cmd.index("--stop-time-hours") + 1] == repr(60 / 3600)
            stateful = name == "durnn-tbptt"
            assert ("durnn_language_modeling" in cmd) == stateful
        assert "--context-window" in compare.eval_cmd(level, "d", "c.pt", "stateless", "test")
