"""Speech data pipeline: synthesis -> fbank -> manifests -> vocabulary -> fairseq train/generate
with WER, held-out voices, and the manifest row checks of ``durnn_speech_to_text``."""
import logging
import shutil
import subprocess
import sys
from argparse import Namespace

import numpy as np
import pytest
import soundfile as sf
import yaml

import speech_runs
from durnn_plugin.errors import InvalidDataError
from durnn_plugin.tasks.durnn_speech_to_text import min_source_frames
from durnn_plugin.tasks.s2t_manifest import check_manifest, checked_rows, subsampler_receptive_field

pytestmark = pytest.mark.skipif(bool(speech_runs.prepare_speech.synthesize.missing_tools()),
                                reason="needs flite, espeak-ng and sox (apt-get)")

from examples.speech_recognition import (features, prepare_speech, transcribe,  # noqa: E402
                                         wer_by_voice)


def test_manifests_columns_and_n_frames(data):
    for split in ("train", "dev", "test_digits"):
        text = (data / f"{split}.tsv").read_text().splitlines()
        assert text[0].split("\t") == ["id", "audio", "n_frames", "tgt_text", "speaker"]
        rows = features.read_manifest(str(data / f"{split}.tsv"))
        assert len(rows) == len(text) - 1 > 0
        for row in rows:
            feats = np.load(data / row["audio"])
            assert feats.shape == (int(row["n_frames"]), 80)
            wav = data.parent / "wav" / f"{row['id']}.wav"
            samples, rate = sf.read(wav)
            assert rate == 16000 and samples.ndim == 1
            assert feats.shape[0] == 1 + (len(samples) - 400) // 160  # 25 ms window, 10 ms hop
            assert np.abs(samples).max() == pytest.approx(0.891, abs=0.02)  # gain -n -1: -1 dBFS
            assert row["tgt_text"] and row["speaker"] == row["id"].rsplit("-", 2)[0]
    digits = features.read_manifest(str(data / "test_digits.tsv"))
    assert all(set(r["tgt_text"].split()) <= set(prepare_speech.synthesize.DIGIT_WORDS) | {"oh"}
               for r in digits)


def test_fbank_shape_and_utterance_cmvn(data):
    from fairseq import options, tasks

    row = features.read_manifest(str(data / "dev.tsv"))[0]
    feats = features.fbank(features.read_wav(str(data.parent / "wav" / f"{row['id']}.wav")))
    assert feats.shape == (int(row["n_frames"]), 80) and feats.dtype == np.float32
    assert np.isfinite(feats).all() and feats.std(axis=0).min() > 0.1
    # utterance CMVN is fairseq's utterance_cmvn transform, named in config.yaml
    parser = options.get_training_parser(default_task="durnn_speech_to_text")
    args = options.parse_args_and_arch(parser, [str(data), "--task", "durnn_speech_to_text",
                                                *speech_runs.TINY_S2T])
    task = tasks.setup_task(args)
    task.load_dataset("dev")
    source = task.datasets["dev"][0].source.numpy()
    assert source.shape == (int(row["n_frames"]), 80)
    np.testing.assert_allclose(source.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(source.std(axis=0), 1, atol=1e-3)


def test_held_out_voices_are_not_in_train(data):
    speakers = {s: {r["speaker"] for r in features.read_manifest(str(data / f"{s}.tsv"))}
                for s in ("train", "dev", "test_digits")}
    assert speakers["train"] == set(speech_runs.TRAIN_VOICES)
    assert speakers["dev"] == set(speech_runs.DEV_VOICES)
    assert speakers["test_digits"] == set(speech_runs.TEST_VOICES)
    split = prepare_speech.voice_split(prepare_speech.DEV_VOICES, prepare_speech.TEST_VOICES)
    held_out = set(split["dev"]) | set(split["test"])
    assert held_out and not held_out & set(split["train"])
    assert sorted(split["train"] + split["dev"] + split["test"]) == \
        sorted(prepare_speech.synthesize.all_voices())
    # the synthetic test set is defined by its named voices; every engine trains, Piper too
    assert split["test"] == list(prepare_speech.TEST_VOICES) == ["flite-rms",
                                                                 "espeak-en-gb-x-rp+f4"]
    assert "piper-joe" in split["train"]
    engine = lambda voices: {v.split("-", 1)[0] for v in voices}  # noqa: E731
    assert engine(split["train"]) == engine(prepare_speech.synthesize.all_voices())
    speaker = prepare_speech.synthesize.speaker
    assert not {speaker(v) for v in held_out} & {speaker(v) for v in split["train"]}
    with pytest.raises(ValueError, match="both dev and test"):
        prepare_speech.voice_split(["flite-rms"], ["flite-rms"])
    with pytest.raises(ValueError, match=r"held-out voices \['piper-joe'\] are not among"):
        prepare_speech.voice_split(["flite-rms"], ["piper-joe"], ["flite-rms", "flite-awb"])
    with pytest.raises(ValueError, match=r"speakers in both dev and test: \['kal'\]"):
        prepare_speech.voice_split(["flite-kal16"], ["festival-kal"])
    # a held-out voice takes the other renderings of its speaker with it
    split = prepare_speech.voice_split(["festival-slt"], ["piper-joe"])
    assert split["dev"] == ["flite-slt", "festival-slt"] and split["test"] == ["piper-joe"]
    assert not {"flite-slt", "festival-slt", "piper-joe"} & set(split["train"])
    with pytest.raises(ValueError, match="unknown voice 'flite-bob'"):
        prepare_speech.voice_split(["flite-bob"], [])


@pytest.mark.slow
def test_train_generate_wer_per_voice(data, checkpoint, tmp_path):
    out = speech_runs.generate(data, checkpoint, tmp_path)
    assert "Generate test_digits with beam=2: WER: " in out
    fairseq_wer = float(out.rsplit("WER: ", 1)[1].split()[0])
    rows = features.read_manifest(str(data / "test_digits.tsv"))
    per_voice, total = wer_by_voice.wer_by_speaker(rows, wer_by_voice.read_generate(
        str(tmp_path / "generate-test_digits.txt")))
    assert set(per_voice) == set(speech_runs.TEST_VOICES)
    assert total[0] == pytest.approx(fairseq_wer, abs=0.01)
    assert total[2] == len(rows) and sum(v[2] for v in per_voice.values()) == len(rows)
    with pytest.raises(ValueError, match="decoded 1 of"):
        wer_by_voice.wer_by_speaker(rows, {0: ("x", "x")})


def test_wer_by_speaker_counts_word_errors():
    rows = [{"tgt_text": "one two", "speaker": "a"}, {"tgt_text": "three four", "speaker": "b"}]
    per_voice, total = wer_by_voice.wer_by_speaker(rows, {0: ("one two", "one two"),
                                                          1: ("three four", "three")})
    assert per_voice == {"a": (0.0, 2, 1), "b": (50.0, 2, 1)} and total == (25.0, 4, 2)


# a tiny s2t_durnn: DuRNN encoder and decoder, 1 layer each of width 32
TINY_S2T_DURNN = ["--arch", "s2t_durnn_s", "--encoder-num-layers", "1", "--decoder-num-layers",
                  "1", "--encoder-hidden-size", "32", "--decoder-hidden-size", "32",
                  "--encoder-short-size", "8", "--decoder-short-size", "8",
                  "--encoder-embed-dim", "32", "--decoder-embed-dim", "32", "--conv-channels", "32"]


@pytest.mark.slow
def test_s2t_durnn_trains_and_decodes(data, tmp_path):
    """The plugin's own speech model through the same pipeline: fairseq-train on the
    synthesised corpus, then fairseq-generate with WER gives one hypothesis per test row."""
    speech_runs.train(data, tmp_path / "ckpt", model=TINY_S2T_DURNN)
    out = speech_runs.generate(data, tmp_path / "ckpt" / "checkpoint_last.pt", tmp_path)
    assert "Generate test_digits with beam=2: WER: " in out
    rows = features.read_manifest(str(data / "test_digits.tsv"))
    result = tmp_path / "generate-test_digits.txt"
    assert sum(line.startswith("H-") for line in result.read_text().splitlines()) == len(rows)
    references = [ref for ref, _ in wer_by_voice.read_generate(str(result)).values()]
    assert sorted(references) == sorted(r["tgt_text"] for r in rows)



def test_receptive_field_and_min_source_frames():
    assert subsampler_receptive_field([5, 5]) == 13
    assert subsampler_receptive_field([3]) == 3
    assert min_source_frames(Namespace(min_source_frames=None, conv_kernel_sizes="5,5")) == 13
    assert min_source_frames(Namespace(min_source_frames=None), Namespace(
        conv_kernel_sizes="3,3,3")) == 1 + 2 + 4 + 8
    assert min_source_frames(Namespace(min_source_frames=4, conv_kernel_sizes="5,5")) == 4
    assert min_source_frames(Namespace()) == 1


def bad_manifest(data, tmp_path):
    """A copy of ``dev.tsv`` in a new data directory with bad rows appended (lines 4-8)."""
    bad = tmp_path / "bad"
    shutil.copytree(data, bad, ignore=shutil.ignore_patterns("fbank80"))
    (bad / "fbank80").symlink_to(data / "fbank80")
    config = yaml.safe_load((bad / "config.yaml").read_text())
    (bad / "config.yaml").write_text(yaml.safe_dump(dict(config, audio_root=str(bad))))
    np.save(bad / "short.npy", np.zeros((5, 80), np.float32))
    (bad / "garbage.npy").write_bytes(b"not numpy")
    rows = features.read_manifest(str(data / "dev.tsv"))
    good = rows[0]
    extra = [dict(good, id="no-file", audio="fbank80/missing.npy"),
             dict(good, id="no-text", tgt_text=""),
             dict(good, id="too-short", audio="short.npy", n_frames=5),
             dict(good, id="garbage", audio="garbage.npy"),
             dict(good, id="wrong-n", n_frames=int(good["n_frames"]) + 1)]
    features.write_manifest(str(bad / "dev.tsv"), rows + extra)
    return bad, len(rows)


def test_bad_rows_one_line_each(data, tmp_path, caplog):
    bad, n_good = bad_manifest(data, tmp_path)
    tsv = str(bad / "dev.tsv")
    rows = features.read_manifest(tsv)
    kept, problems = check_manifest(tsv, rows, str(bad), min_frames=13)
    assert [r["id"] for r in kept] == [r["id"] for r in rows[:n_good]]
    lines = {p.row_id: str(p) for p in problems}
    first = n_good + 2  # line 1 is the header
    assert lines["no-file"].startswith(f"{tsv} line {first} (id 'no-file'): audio "
                                       "'fbank80/missing.npy' not found")
    assert "must be an existing .npy feature file" in lines["no-file"]
    assert lines["no-text"] == (f"{tsv} line {first + 1} (id 'no-text'): empty tgt_text; a "
                                "non-blank transcript is required (config.yaml's "
                                "allow_empty_tgt_text lists the splits that may hold audio "
                                "without words) (row skipped)")
    assert lines["too-short"] == (
        f"{tsv} line {first + 2} (id 'too-short'): 5 feature frames, fewer than 13 (the "
        "subsampler's receptive field, --min-source-frames); must be at least 13 (row skipped)")
    assert "audio 'garbage.npy' unreadable" in lines["garbage"]
    assert "but audio" in lines["wrong-n"] and "must be equal" in lines["wrong-n"]
    assert all("\n" not in line for line in lines.values())
    assert [p.fatal for p in problems] == [True, False, False, True, True]

    with caplog.at_level(logging.WARNING), pytest.raises(InvalidDataError) as err:
        checked_rows(tsv, rows, str(bad), min_frames=13)
    assert str(err.value) == f"{lines['no-file']} (and 2 more rows, listed above)"
    assert [r.getMessage() for r in caplog.records] == [str(p) for p in problems]
    # skipped rows only: the rest of the split is used
    skip_only = [r for r in rows if r["id"] not in ("no-file", "garbage", "wrong-n")]
    assert len(checked_rows(tsv, skip_only, str(bad), min_frames=13)) == n_good
    with pytest.raises(InvalidDataError, match="no usable row"):
        checked_rows(tsv, skip_only[n_good:], str(bad), min_frames=13)
    with pytest.raises(InvalidDataError, match="no column n_frames"):
        checked_rows(tsv, [{"id": "a", "audio": "x.npy", "tgt_text": "a"}], str(bad))


def test_noise_only_rows_have_empty_targets(tmp_path):
    """--noise-only utterances: silence or noise, an empty transcript, allowed in train by
    config.yaml, loaded by the task with the target </s> alone; elsewhere an empty transcript
    is skipped, and blanks or a missing transcript are refused where empty ones are allowed."""
    from fairseq import options, tasks

    sets = {"train": prepare_speech.utterances(["flite-awb"], {"digits": 2}, [], seed=0,
                                               split="train")
            + prepare_speech.noise_only_utterances(4),
            "dev": prepare_speech.utterances(["flite-slt"], {"digits": 1}, [], seed=0,
                                             split="dev")}
    data = prepare_speech.write_data(sets, str(tmp_path), 20, False)
    tsv = f"{data}/train.tsv"
    rows = features.read_manifest(tsv)
    empty = [r for r in rows if r["tgt_text"] == ""]
    assert [r["speaker"] for r in empty] == ["noise-silence", "noise-white", "noise-pink",
                                             "noise-brown"]
    assert all(28 <= int(r["n_frames"]) <= 300 for r in empty)  # 0.3-3 s
    assert not sf.read(tmp_path / "wav" / f"{empty[0]['id']}.wav")[0].any()  # silence
    assert np.abs(sf.read(tmp_path / "wav" / f"{empty[1]['id']}.wav")[0]).max() > 0.8  # noise
    assert yaml.safe_load(open(f"{data}/config.yaml"))["allow_empty_tgt_text"] == ["train"]

    parser = options.get_training_parser(default_task="durnn_speech_to_text")
    args = options.parse_args_and_arch(parser, [data, "--task", "durnn_speech_to_text",
                                                *speech_runs.TINY_S2T])
    task = tasks.setup_task(args)
    task.load_dataset("train")
    dataset = task.datasets["train"]
    assert len(dataset) == len(rows)
    targets = {dataset.ids[i]: dataset[i].target.tolist() for i in range(len(dataset))}
    assert all(targets[r["id"]] == [task.target_dictionary.eos()] for r in empty)
    assert all(len(targets[r["id"]]) > 1 for r in rows if r["tgt_text"])
    config = yaml.safe_load(open(f"{data}/config.yaml"))
    with open(f"{data}/config.yaml", "w") as f:
        yaml.safe_dump(dict(config, allow_empty_tgt_text="train"), f)
    with pytest.raises(InvalidDataError, match="^config.yaml: allow_empty_tgt_text 'train'; "
                                               "must be a list of split names$"):
        tasks.setup_task(args).load_dataset("train")

    kept, bad = check_manifest(tsv, rows, data)  # a split where empty transcripts are not meant
    assert [b.row_id for b in bad] == [r["id"] for r in empty] and len(kept) == 2
    odd = rows + [dict(rows[0], id="blanks", tgt_text="  "), dict(rows[0], id="short",
                                                                  tgt_text=None)]
    kept, bad = check_manifest(tsv, odd, data, allow_empty=True)
    assert len(kept) == len(rows) and [str(b) for b in bad] == [
        f"{tsv} line {len(rows) + 2} (id 'blanks'): tgt_text '  ' is blanks only; must hold "
        "words, or be empty for audio without words (row skipped)",
        f"{tsv} line {len(rows) + 3} (id 'short'): no tgt_text (the row has too few columns); "
        "every row needs a value in each column (row skipped)"]


def test_an_empty_hypothesis_can_be_decoded(data, checkpoint, tmp_path):
    """The task lets </s> come first (min_len 0): a decoder that scores </s> highest gives no
    words; fairseq's default min_len 1 would force a piece out."""
    import torch
    from fairseq import options

    parser = options.get_generation_parser(default_task="durnn_speech_to_text")
    argv = [str(data), "--task", "durnn_speech_to_text", "--user-dir", speech_runs.PLUGIN]
    assert options.parse_args_and_arch(parser, argv).min_len == 0
    parser = options.get_generation_parser(default_task="durnn_speech_to_text")
    assert options.parse_args_and_arch(parser, argv + ["--min-len", "2"]).min_len == 2

    transcriber = transcribe.Transcriber(str(checkpoint), str(data), beam=2, max_len_a=0,
                                         max_len_b=12)
    assert transcriber.generator.min_len == 0
    eos = transcriber.task.target_dictionary.eos()

    def eos_first(module, inputs, logits):
        logits = logits.clone()
        logits[..., eos] += 100.0
        return logits

    transcriber.models[0].decoder.output_projection.register_forward_hook(eos_first)
    row = features.read_manifest(str(data / "test_digits.tsv"))[0]
    wav = str(data.parent / "wav" / f"{row['id']}.wav")
    assert transcriber(wav) == ""
    feats = transcriber.features(wav)
    sample = {"net_input": {"src_tokens": feats[None],
                            "src_lengths": torch.tensor([feats.shape[0]])}}
    for min_len, n_tokens in ((0, 1), (1, 2)):
        transcriber.generator.min_len = min_len
        best = transcriber.task.inference_step(transcriber.generator, transcriber.models,
                                               sample)[0][0]
        assert len(best["tokens"]) == n_tokens  # </s> alone, or one piece and </s>


@pytest.mark.slow
def test_fairseq_train_names_bad_rows(data, tmp_path):
    bad, _ = bad_manifest(data, tmp_path)
    done = speech_runs.train_command(bad, tmp_path / "ckpt")
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"fairseq-train: error: {bad / 'dev.tsv'} line ")
    assert "(id 'no-file'): audio 'fbank80/missing.npy' not found" in last
    assert "(and 2 more rows, listed above)" in last
    log = done.stdout.splitlines()  # fairseq logs to stdout: one line per bad row
    for row_id, level in [("no-file", "ERROR"), ("no-text", "WARNING"), ("too-short", "WARNING"),
                          ("garbage", "ERROR"), ("wrong-n", "ERROR")]:
        assert sum(f"| {level} |" in line and f"(id '{row_id}')" in line for line in log) == 1
    assert not (tmp_path / "ckpt" / "checkpoint_last.pt").exists()


def test_utterances_do_not_depend_on_other_counts(tmp_path):
    few = prepare_speech.utterances(["flite-awb"], {"digits": 2, "sentence": 1},
                                    speech_runs.SENTENCES, seed=3, split="train")
    more = prepare_speech.utterances(["flite-awb"], {"digit": 4, "digits": 5, "sentence": 3},
                                     speech_runs.SENTENCES, seed=3, split="train")
    assert few[:2] == more[4:6] and few[2] == more[9]  # the same first digits and sentence
    assert len({u.id for u in more}) == len(more)
    # a cached WAV file is reused only for the same voice and text
    utt = few[0]
    wav = tmp_path / "u.wav"
    prepare_speech.synthesize.synthesize_one(utt, str(wav), seed=1)
    first = wav.stat().st_mtime_ns
    prepare_speech.synthesize.synthesize_one(utt, str(wav), seed=1)
    assert wav.stat().st_mtime_ns == first
    changed = prepare_speech.Utterance(utt.id, utt.voice, "one two", utt.kind)
    prepare_speech.synthesize.synthesize_one(changed, str(wav), seed=1)
    assert (tmp_path / "u.wav.txt").read_text() == "flite-awb\tone two\tseed 1\n"


def test_zip_slices_and_unsupported_paths(tmp_path):
    import io
    import zipfile

    feats = np.zeros((20, 80), np.float32)
    buf = io.BytesIO()
    np.save(buf, feats)
    with zipfile.ZipFile(tmp_path / "f.zip", "w", zipfile.ZIP_STORED) as z:
        z.writestr("u.npy", buf.getvalue())
    with zipfile.ZipFile(tmp_path / "f.zip") as z:
        info = z.getinfo("u.npy")
    offset = info.header_offset + 30 + len(info.filename)  # no extra field: Python wrote it
    row = {"id": "u", "n_frames": "20", "tgt_text": "one"}
    rows = [dict(row, audio=f"f.zip:{offset}:{info.file_size}"), dict(row, id="t", audio="u.txt"),
            dict(row, id="far", audio=f"f.zip:{offset}:999999")]
    kept, bad = check_manifest("m.tsv", rows, str(tmp_path), min_frames=13)
    assert [r["id"] for r in kept] == ["u"]
    assert str(bad[0]).startswith("m.tsv line 3 (id 't'): audio 'u.txt' is not a supported path")
    assert "unreadable" in str(bad[1]) and "lies outside" in str(bad[1])


@pytest.mark.slow
def test_transcribe_any_rate_and_channels(data, checkpoint, tmp_path):
    """transcribe.py on a file made here (espeak-ng at 22.05 kHz, stereo, WAV and FLAC): the
    training pipeline's features, the same hypothesis as fairseq-generate, one line per file."""
    raw = tmp_path / "raw.wav"
    subprocess.run(["espeak-ng", "-v", "en-us+m7", "-w", raw, "--", "four oh seven"], check=True)
    stereo = tmp_path / "stereo 22k.wav"
    flac = tmp_path / "stereo.flac"
    for out in (stereo, flac):
        subprocess.run(["sox", raw, "-r", "22050", "-c", "2", out], check=True)
    assert sf.info(str(stereo)).samplerate == 22050 and sf.info(str(flac)).channels == 2
    # the training chain (sox to 16 kHz mono, -1 dBFS) and load_audio give the same features
    train_wav = tmp_path / "train.wav"
    subprocess.run(["sox", stereo, "-r", "16000", "-c", "1", "-b", "16", train_wav, "channels",
                    "1", "rate", "16000", "gain", "-n", "-1"], check=True)
    ours = features.fbank(features.load_audio(str(flac)))
    theirs = features.fbank(features.read_wav(str(train_wav)))
    assert ours.shape == theirs.shape
    assert np.median(np.abs(ours - theirs)) < 0.05  # log-mel, resamplers differ slightly

    decode = ["--beam", "2", "--max-len-a", "0", "--max-len-b", "12"]
    done = subprocess.run([sys.executable, "-m", "examples.speech_recognition.transcribe",
                           "--path", checkpoint, "--data", data, *decode, stereo, flac],
                          capture_output=True, text=True, cwd=speech_runs.REPO)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(stereo), str(flac)]

    # the model input and hypothesis of a test row equal fairseq-generate's (same features)
    transcriber = transcribe.Transcriber(str(checkpoint), str(data), beam=2, max_len_a=0,
                                         max_len_b=12)
    speech_runs.generate(data, checkpoint, tmp_path)
    hyps = wer_by_voice.read_generate(str(tmp_path / "generate-test_digits.txt"))
    row = features.read_manifest(str(data / "test_digits.tsv"))[0]
    wav = str(data.parent / "wav" / f"{row['id']}.wav")
    np.testing.assert_allclose(transcriber.features(wav).numpy(), transcriber.transforms(
        np.load(data / row["audio"])), atol=1e-3)  # peak rescaled from 16-bit samples
    assert transcriber(wav) == hyps[0][1]


def test_transcribe_refuses_unreadable_audio(tmp_path, capsys):
    (tmp_path / "notes.wav").write_text("not audio")
    for path, reason in [(tmp_path / "missing.wav", "no such file"),
                         (tmp_path / "notes.wav", "")]:
        with pytest.raises(SystemExit) as stop:
            transcribe.main([str(path), "--path", str(tmp_path / "none.pt")])
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"transcribe.py: error: AUDIO '{path}': {reason}")
        assert err.endswith("must be a readable WAV or FLAC file (any sample rate, mono or "
                            "stereo)") and "\n" not in err
    sf.write(tmp_path / "ok.flac", np.zeros(1600), 16000)
    with pytest.raises(SystemExit):
        transcribe.main([str(tmp_path / "ok.flac"), "--path", str(tmp_path / "none.pt")])
    assert capsys.readouterr().err.strip() == (f"transcribe.py: error: --path "
                                               f"'{tmp_path / 'none.pt'}': no such file; must be "
                                               "a checkpoint (.pt)")
