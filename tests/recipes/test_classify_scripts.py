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
    curve, params, seconds = race.parse(LOG)
    assert params == "42,337" and seconds == 16.2
    assert curve == [(20, 9, 0.16), (34, 15, 0.008), (36, 15, 9e-05)]  # (updates, seconds, valid mse)
    race.plot({"durnn": (curve, params, seconds)}, "mse", tmp_path / "c.png", "t", solved=0.01)
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
