"""The speech race's pieces: equal parameter counts, the runs of each plan, and the parsing of
fairseq-train logs and run_digits.sh results."""
import os
import subprocess

import pytest
import torch

from examples.speech_recognition import features, prepare_speech, race


@pytest.fixture(scope="module")
def dict256(tmp_path_factory):
    """A data directory with a config.yaml and a 256-entry dictionary (252 pieces + 4
    specials, the size prepare_speech's default --vocab-size gives), no audio."""
    d = tmp_path_factory.mktemp("dict256")
    (d / "spm_unigram256.txt").write_text("".join(f"p{i} 1\n" for i in range(252)))
    features.write_config(str(d), str(d / "spm_unigram256"), specaugment=False)
    return str(d)


def test_race_models_have_equal_parameter_counts(dict256):
    models = {name: race.build_model(dict256, arch, args)
              for name, (arch, args, _) in race.RACE.items()}
    counts = {name: sum(p.numel() for n, p in m.named_parameters() if "ctc_proj" not in n)
              for name, m in models.items()}
    assert list(counts) == ["durnn", "transformer", "berard", "durnn-ctc"]
    assert race.param_count(dict256, *race.RACE["durnn"][:2]) == counts["durnn"]
    # the CTC run differs only by its CTC output (256 x 512 + 256), used in training only
    assert counts["durnn-ctc"] == counts["durnn"]
    assert sum(p.numel() for p in models["durnn-ctc"].parameters()) == counts["durnn"] + 256 * 513
    lines = race.check_counts(counts).splitlines()
    assert len(lines) == 4 and lines[0].startswith("durnn")
    assert all(abs(n / counts["durnn"] - 1) <= 0.05 for n in counts.values())
    # each model runs forward and backward on a padded batch of 2 utterances
    for name, model in models.items():
        frames = torch.randn(2, 60, 80)
        tokens = torch.tensor([[2, 10, 11, 12], [2, 13, 1, 1]])
        out, _ = model(frames, torch.tensor([60, 45]), tokens)
        assert out.shape == (2, 4, len(model.decoder.dictionary)), name
        out.sum().backward()
    # a count more than 5% away is refused in one line
    with pytest.raises(ValueError, match=r"berard: [\d,]+ parameters, \+6\.0% vs durnn's"):
        race.check_counts(dict(counts, berard=round(counts["durnn"] * 1.06)))


def test_plans():
    runs = race.plan_runs("race", "--speed-perturb 0.9,1.0,1.1")
    assert [(r.arch, r.data) for r in runs] == [("s2t_durnn_s", "race"),
                                                ("s2t_transformer_xs", "race"),
                                                ("s2t_berard", "race"),
                                                ("s2t_durnn_s", "race")]
    assert "label_smoothed_cross_entropy_with_ctc" in runs[3].train_args
    assert all(r.prepare_args == "--speed-perturb 0.9,1.0,1.1" for r in runs)
    ablation = race.plan_runs("ablation")
    assert {r.arch for r in ablation} == {"s2t_durnn_s"} and len({r.data for r in ablation}) == 10
    # every ablation variant parses as prepare_speech options and holds no sentences
    for run in ablation:
        args = run.prepare_args.split()
        assert "sentence" not in run.prepare_args and "command" not in run.prepare_args
        parser_ok = prepare_speech.parse_counts(args[args.index("--train-texts") + 1], "x")
        assert set(parser_ok) == {"digit", "digits", "number", "time", "date"}


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
"""


def test_learning_curve_results_and_table(tmp_path):
    (tmp_path / "train.log").write_text(LOG)
    assert race.learning_curve(str(tmp_path / "train.log")) == [(40.0, 25, 7.1, 10.5),
                                                                (90.0, 50, 5.25, 41.0)]
    (tmp_path / "results.txt").write_text(RESULTS)
    results = race.read_results(str(tmp_path / "results.txt"))
    assert results == {"test_digits": {"flite-rms": (10.0, 20), "piper-joe": (15.0, 20),
                                       "all": (12.5, 40)},
                       "test_numbers": {"piper-joe": (50.0, 8), "all": (50.0, 8)}}
    runs = race.plan_runs("race")[:2]
    text = race.table(runs, {"durnn": results}, {"durnn": "990,720 | 50"})
    assert "| durnn | 10.00 | 15.00 | 12.50 | 990,720 | 50 |" in text
    assert "| transformer | - | - | - |  |" in text
    race.plot({"durnn": race.learning_curve(str(tmp_path / "train.log"))},
              str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_runs_go_jobs_at_a_time_and_a_failure_is_reported(tmp_path):
    """run_all keeps at most ``jobs`` runs going and names the run that failed."""
    script = tmp_path / "fake_run.sh"
    script.write_text('echo "$WORK start $(date +%s.%N)" >> "$LOG"; sleep 1; '
                      'echo "$WORK end $(date +%s.%N)" >> "$LOG"; [ "$WORK" != bad ]\n')
    log = tmp_path / "log"

    def go(names, jobs):
        runs = [race.Run(n, "a", "", n, "") for n in names]
        envs = {n: dict(os.environ, WORK=n, LOG=str(log)) for n in names}
        race.run_all(runs, envs, names, str(tmp_path), jobs, script=str(script))

    go(["a", "b", "c"], 2)
    events = sorted((float(t), kind) for _, kind, t in (line.split() for line in
                                                         log.read_text().splitlines()))
    running, most = 0, 0
    for _, kind in events:
        running += 1 if kind == "start" else -1
        most = max(most, running)
    assert most == 2 and len(events) == 6
    assert (tmp_path / "c.out").exists()
    with pytest.raises(subprocess.CalledProcessError, match="run bad"):
        go(["bad", "d"], 2)
