"""The speech race's pieces: equal parameter counts, the runs of each plan, the augmentation
defaults run_digits.sh shares, and the reading of fairseq-train logs and run_digits.sh results
(the runner itself: tests/recipes/test_runs.py)."""
import argparse
import re
import subprocess
import sys

import pytest
import torch

from examples import runs
from examples.speech_recognition import augment, features, prepare_speech, race
from fairseq_runs import REPO


@pytest.fixture(scope="module")
def dict256(tmp_path_factory):
    """A data directory with a config.yaml and a 256-entry dictionary (252 pieces + 4
    specials, the size prepare_speech's default --vocab-size gives), no audio."""
    d = tmp_path_factory.mktemp("dict256")
    (d / "spm_unigram256.txt").write_text("".join(f"p{i} 1\n" for i in range(252)))
    features.write_config(str(d), str(d / "spm_unigram256"), specaugment=False)
    return str(d)


def test_race_models_have_equal_parameter_counts(dict256):
    models = {name: runs.build_model(race.model_options(dict256, arch, args))
              for name, (arch, args, _) in race.RACE.items()}
    counts = {name: race.param_count(dict256, arch, args)
              for name, (arch, args, _) in race.RACE.items()}
    assert list(counts) == ["durnn", "transformer", "berard", "conformer", "durnn-ctc",
                            "durnn-stream"]
    assert counts["durnn"] == sum(p.numel() for p in models["durnn"].parameters())
    # the CTC run differs only by its CTC output (256 x 512 + 256), used in training only
    assert counts["durnn-ctc"] == counts["durnn"]
    assert sum(p.numel() for p in models["durnn-ctc"].parameters()) == counts["durnn"] + 256 * 513
    # the streaming model's CTC layer (256 x 352 + 256) is its output: counted
    assert counts["durnn-stream"] == sum(p.numel() for p in models["durnn-stream"].parameters())
    assert models["durnn-stream"].ctc_proj.weight.shape == (256, 352)
    lines = race.check_counts(counts).splitlines()
    assert len(lines) == 6 and lines[0].startswith("durnn")
    assert all(abs(n / counts["durnn"] - 1) <= 0.05 for n in counts.values())
    # each encoder-decoder model runs forward and backward on a padded batch of 2 utterances
    for name, model in models.items():
        if name == "durnn-stream":
            continue
        frames = torch.randn(2, 60, 80)
        tokens = torch.tensor([[2, 10, 11, 12], [2, 13, 1, 1]])
        out, _ = model(frames, torch.tensor([60, 45]), tokens)
        assert out.shape == (2, 4, len(model.decoder.dictionary)), name
        out.sum().backward()
    # a count more than 5% away is refused in one line
    with pytest.raises(ValueError, match=r"berard: [\d,]+ parameters, \+6\.0% vs durnn's"):
        race.check_counts(dict(counts, berard=round(counts["durnn"] * 1.06)))


def test_plans():
    entries = race.plan_entries("race", "--speed-perturb 0.9,1.0,1.1")
    assert [(r.arch, r.data) for r in entries] == [("s2t_durnn_s", "race"),
                                                   ("s2t_transformer_xs", "race"),
                                                   ("s2t_berard", "race"),
                                                   ("s2t_conformer", "race"),
                                                   ("s2t_durnn_s", "race"),
                                                   ("s2t_durnn_ctc_s", "race")]
    assert "label_smoothed_cross_entropy_with_ctc" in entries[4].train_args
    assert all(r.prepare_args == "--speed-perturb 0.9,1.0,1.1" for r in entries)
    ablation = race.plan_entries("ablation")
    assert {r.arch for r in ablation} == {"s2t_durnn_s"}
    assert len({r.data for r in ablation}) == len(augment.DEFAULT_EFFECTS) + 3
    # one effect of the default augmentation at a time, then all of them
    assert [r.name for r in ablation] == ["none", *augment.DEFAULT_EFFECTS, "no-specaugment",
                                          "all"]
    assert ablation[-1].prepare_args == f"{race.ABLATION_TEXTS} {augment.DEFAULT_OPTIONS}"
    # the options off by default, each on top of all the default ones, in its own data variant
    extra = race.plan_entries("extra")
    assert [r.name for r in extra] == ["all", "all+pad-silence", "all+vtln", "all+noise-only"]
    assert len({r.data for r in extra}) == 4
    for run, option in zip(extra[1:], ("--pad-silence", "--vtln", "--noise-only")):
        assert run.prepare_args.startswith(extra[0].prepare_args + " " + option)
        ap = argparse.ArgumentParser()
        prepare_speech.augmentation_args(ap)
        known, _ = ap.parse_known_args(run.prepare_args.split())
        prepare_speech.augmentation_from(known)  # valid values
    # every ablation variant parses as prepare_speech options and holds no sentences
    for run in ablation + extra:
        args = run.prepare_args.split()
        assert "sentence" not in run.prepare_args and "command" not in run.prepare_args
        parser_ok = prepare_speech.parse_counts(args[args.index("--train-texts") + 1], "x")
        assert set(parser_ok) == {"digit", "digits", "number", "time", "date"}


def test_run_digits_defaults_to_the_same_augmentation():
    """run_digits.sh's default PREPARE_ARGS is augment.DEFAULT_OPTIONS, which prepare_speech
    accepts; PREPARE_ARGS="" stays clean speech."""
    script = (REPO / race.RUN_SCRIPT).read_text().splitlines()
    lines = [line for line in script if line.startswith(("AUGMENT=", "PREPARE_ARGS="))]
    assert len(lines) == 2 and "--speed-perturb" not in "\n".join(script)
    shell = (f"set -eu; BIN={sys.prefix}/bin; " + "; ".join(lines)
             + '; printf "%s" "$PREPARE_ARGS"')
    got = subprocess.run(["bash", "-c", shell], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert got == augment.DEFAULT_OPTIONS
    assert subprocess.run(["bash", "-c", shell], cwd=REPO, capture_output=True, text=True,
                          env={"PREPARE_ARGS": "", "PATH": "/usr/bin:/bin"}).stdout == ""
    ap = prepare_speech.argparse.ArgumentParser()
    prepare_speech.augmentation_args(ap)
    prepare_speech.augmentation_from(ap.parse_args(got.split())).check()


LOG = "".join(line + "\n" for line in [  # fairseq-train's --log-format simple lines
    "2026-12-06 05:00:00 | INFO | fairseq_cli.train | num. shared model params: 990,720 "
    "(num. trained: 990,720)",
    "2026-12-06 05:00:40 | INFO | dev | epoch 001 | valid on 'dev' subset | loss 7.1 | "
    "nll_loss 6.9 | total 73 | n_correct 1 | ppl 53.2 | accuracy 10.5 | wps 0 | wpb 73 | "
    "bsz 6 | num_updates 25",
    "2026-12-06 05:00:50 | INFO | train_inner | epoch 002:      1 / 4 loss=6.1, accuracy=20, "
    "num_updates=26",
    "2026-12-06 05:01:30 | INFO | dev | epoch 002 | valid on 'dev' subset | loss 5.25 | "
    "nll_loss 5 | total 73 | n_correct 30 | ppl 38.1 | accuracy 41 | wps 0 | wpb 73 | bsz 6 | "
    "num_updates 50 | best_loss 5.25"])
RESULTS = """\
arch s2t_durnn_s  (990,720 parameters), CPU, 2 threads
held-out voices, WER %:
test_digits (fairseq-generate: WER: 12.50):
  flite-rms                WER  10.00 (20 words, 4 utterances)
  piper-joe                WER  15.00 (20 words, 4 utterances)
  all                      WER  12.50 (40 words, 8 utterances)
test_numbers (fairseq-generate: WER: 50.00):
  piper-joe                WER  50.00 (8 words, 2 utterances)
  all                      WER  50.00 (8 words, 2 utterances)
dev_real (fairseq-generate: WER: 80.00):
  number words             WER  80.00 (5 words, 1 utterances)
  all                      WER  80.00 (5 words, 1 utterances)
"""


def test_learning_curve_results_and_table(tmp_path):
    (tmp_path / "train.log").write_text(LOG)
    log = runs.read_log(str(tmp_path / "train.log"))
    assert log.curve("loss", "dev") == [(40.0, 25, 7.1), (90.0, 50, 5.25)]
    assert log.curve("accuracy", "dev") == [(40.0, 25, 10.5), (90.0, 50, 41)]
    assert log.params == 990720 and log.updates == 50
    (tmp_path / "results.txt").write_text(RESULTS)
    results = race.read_results(str(tmp_path / "results.txt"))
    assert results == {"test_digits": {"flite-rms": (10.0, 20), "piper-joe": (15.0, 20),
                                       "all": (12.5, 40)},
                       "test_numbers": {"piper-joe": (50.0, 8), "all": (50.0, 8)},
                       "dev_real": {"number words": (80.0, 5), "all": (80.0, 5)}}
    assert race.read_results(str(tmp_path / "none.txt")) == {}  # a failed run left none
    text = race.table(["durnn", "transformer"], {"durnn": results}, {"durnn": ["990,720", 50]})
    assert "| durnn | 10.00 | 15.00 | 12.50 | 990,720 | 50 |" in text
    assert "| transformer | - | - | - |  |  |" in text
    panels = race.curves_panels({"durnn": log})
    assert [p.series["durnn"] for p in panels] == [[(40.0, 7.1), (90.0, 5.25)],
                                                   [(40.0, 10.5), (90.0, 41)]]
    runs.plot(str(tmp_path / "c.png"), panels)
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_report_from_existing_runs(tmp_path):
    """--skip-train (alias --report-only) trains nothing and rebuilds table.md and curves.png;
    a run that left no results shows "-"."""
    root = tmp_path / "race"
    data = root / "data-race"
    data.mkdir(parents=True)
    (data / "spm_unigram256.txt").write_text("".join(f"p{i} 1\n" for i in range(252)))
    features.write_config(str(data), str(data / "spm_unigram256"), specaugment=False)
    (root / "durnn" / "logs").mkdir(parents=True)
    (root / "durnn" / "logs" / "train.log").write_text(LOG)
    (root / "durnn" / "results.txt").write_text(RESULTS)
    race.main(["race", "--report-only", "--workdir", str(tmp_path), "--only",
               "durnn,transformer", "--minutes", "3", "--threads", "1", "--concurrent"])
    text = (root / "table.md").read_text()
    assert text.startswith("race, 3 min per run, ")
    assert "1 threads per run, 2 run(s) at a time, " in text
    assert "2026-12-06 UTC" in text.splitlines()[0]
    assert re.search(r"^\| durnn \| 10\.00 \| 15\.00 \| 12\.50 \| [\d,]+ \| 50 \|$", text, re.M)
    assert re.search(r"^\| transformer \| - \| - \| - \| [\d,]+ \| - \|$", text, re.M)
    assert "ARCH=s2t_durnn_s" in text and "TRAIN_MINUTES=3" in text
    assert "bash examples/speech_recognition/run_digits.sh" in text
    assert (root / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert not (root / "durnn.out").exists()  # nothing ran
