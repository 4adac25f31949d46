"""examples/classification/prepare_bbc.py and examples/long_range/race.py on tiny inputs."""
import zipfile

from classify_runs import load_example

LOG = """\
2026-11-22 07:20:01 | INFO | fairseq_cli.train | num. shared model params: 42,337 (num. trained: 42,337)
2026-11-22 07:20:05 | INFO | train_inner | epoch 001:     10 / 2000 loss=0.5, mse=0.5, num_updates=10, lr=0.002, gnorm=1, train_wall=3, wall=4
2026-11-22 07:20:09 | INFO | train_inner | epoch 001:     20 / 2000 loss=0.2, mse=0.2, num_updates=20, lr=0.002, gnorm=1, train_wall=7, wall=9
2026-11-22 07:20:10 | INFO | valid | epoch 001 | valid on 'valid' subset | loss 0.16 | mse 0.16 | wps 1 | wpb 1 | bsz 50 | num_updates 20
2026-11-22 07:20:14 | INFO | train_inner | epoch 001:     30 / 2000 loss=0.1, mse=0.1, num_updates=30, lr=0.002, gnorm=1, train_wall=11, wall=15
2026-11-22 07:20:16 | INFO | valid | epoch 001 | valid on 'valid' subset | loss 0.008 | mse 0.008 | wps 1 | wpb 1 | bsz 50 | num_updates 34 | best_loss 0.008
2026-11-22 07:20:17 | INFO | valid | epoch 001 | valid on 'valid' subset | loss 9e-05 | mse 9e-05 | wps 1 | wpb 1 | bsz 50 | num_updates 36 | best_loss 9e-05
2026-11-22 07:20:16 | INFO | fairseq_cli.train | done training in 16.2 seconds
"""


def test_race_parses_fairseq_log_and_plots(tmp_path):
    race = load_example("long_range/race.py")
    (tmp_path / "train.log").write_text(LOG)
    log = race.runs.read_log(str(tmp_path / "train.log"))
    assert log.params_shown() == "42,337" and log.seconds == 16.2
    # (seconds since the first stamped line, updates, valid mse)
    assert log.curve("mse") == [(9, 20, 0.16), (15, 34, 0.008), (16, 36, 9e-05)]
    panels = race.curves_panels({"durnn": log}, "mse")
    assert [p.series["durnn"][-1] for p in panels] == [(36, 9e-05), (16, 9e-05)]
    assert panels[0].log_y and panels[0].lines == (race.SOLVED, race.CHANCE_MSE)
    race.runs.plot(str(tmp_path / "c.png"), panels, "t")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_bbc_split_is_fixed_per_topic(tmp_path):
    prepare = load_example("classification/prepare_bbc.py")
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for topic in ("tech", "sport"):
            for i in range(12):
                archive.writestr(f"{prepare.PREFIX}{topic}/{i + 1:03d}.txt",
                                 f"Title {topic} {i}\n\nBody  text\n".encode())
        archive.writestr(f"{prepare.PREFIX}tech/013.txt", "caf\xe9".encode("latin-1"))
    splits = prepare.read_articles(str(wheel))
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [17, 4, 4]
    assert ("sport", "Title sport 0 Body text") in splits["test"]  # index 0 -> test
    assert ("sport", "Title sport 11 Body text") in splits["valid"]  # index 11 -> valid
    assert ("tech", "caf\xe9") in splits["train"]  # index 12 -> train; Latin-1 fallback


def test_race_report_from_existing_runs(tmp_path, monkeypatch):
    """--report-only (now also --skip-train) rebuilds results.md from the logs; a run with no
    log is reported failed."""
    race = load_example("long_range/race.py")
    (tmp_path / "adding_T20" / "durnn").mkdir(parents=True)
    (tmp_path / "adding_T20" / "durnn" / "train.log").write_text("$ fairseq-train x\n" + LOG)
    monkeypatch.setattr("sys.argv", ["race.py", "adding", "--seq-len", "20", "--runs",
                                     "durnn,lstm", "--workdir", str(tmp_path), "--report-only"])
    race.main()
    text = (tmp_path / "adding_T20" / "results.md").read_text()
    assert "| durnn | 42,337 | 36 | 16.2 | 9e-05 | 9e-05 | 34 |" in text
    assert "| lstm | ? | failed, see lstm/train.log |" in text
    assert "fairseq-train x" in text and "--cell lstm" in text  # the commands
    assert (tmp_path / "adding_T20" / "curves.png").read_bytes()[:4] == b"\x89PNG"
