"""prepare_speech.py's progress lines within a split: files written since the split started,
counted per stage, a hard link between the feature directories once, earlier files not at all."""
import os
import time

from examples.speech_recognition.prepare_speech import SplitProgress


def touch(path, when=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").close()
    if when is not None:
        os.utime(path, (when, when))


def test_counts_new_files_per_stage(tmp_path, capsys):
    wav, aug, feats, cache = (str(tmp_path / d) for d in ("wav", "wav_aug", "fbank", "cache"))
    touch(f"{wav}/old.wav.txt", when=time.time() - 3600)  # kept from an earlier run
    progress = SplitProgress("train", 5, wav, aug, [feats, cache], every=0.05)
    for i in range(3):
        touch(f"{wav}/u{i}.wav")
        touch(f"{wav}/u{i}.wav.txt")
    touch(f"{aug}/u0-sp0.9.wav.txt")
    touch(f"{cache}/u0.npy")
    os.makedirs(feats)
    os.link(f"{cache}/u0.npy", f"{feats}/u0.npy")
    touch(f"{feats}/u0-sp0.9.npy")
    assert progress.line().startswith(
        "  train: synthesised 3, augmented 1, features 2 new files of 5 utterances (")
    time.sleep(0.3)
    progress.stop()
    printed = capsys.readouterr().out.splitlines()
    assert printed and all(line.startswith("  train: synthesised 3") for line in printed)
    assert not progress.thread.is_alive()
