"""Language model fusion in beam search: a tiny durnn_lm trained by train_speech_lm.py in a
tiny recogniser's own sentencepiece dictionary changes what transcribe.py and fairseq-generate
decode."""
import shutil

import pytest
from fairseq import options
from fairseq.data import Dictionary
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq_cli import generate as generate_cli

import speech_runs

pytestmark = pytest.mark.skipif(bool(speech_runs.prepare_speech.synthesize.missing_tools()),
                                reason="needs flite, espeak-ng and sox (apt-get)")

from examples.speech_recognition import features, train_speech_lm, transcribe  # noqa: E402

TINY_LM = ["--embed-dim", "16", "--hidden-size", "32", "--short-size", "8", "--num-layers", "1",
           "--dropout", "0", "--embed-dropout", "0", "--lr", "0.01"]


@pytest.fixture(scope="module")
def lm(data, tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("lm")
    train_speech_lm.main(["--data", str(data), "--save-dir", str(save_dir), "--max-update", "40",
                          "--", *TINY_LM])
    return save_dir / "checkpoint_last.pt"


def test_lm_dictionary_is_the_recognisers_index_for_index(data, lm):
    vocab = Dictionary.load(str(next(data.glob("spm_unigram*.txt"))))
    for path in (data / "dict.txt", data / "lm" / "dict.txt"):
        assert Dictionary.load(str(path)).symbols == vocab.symbols
    train_lines = (data / "lm" / "train.txt").read_text().splitlines()
    assert len(train_lines) == len(features.read_manifest(str(data / "train.tsv")))
    assert all(set(line.split()) <= set(vocab.symbols) for line in train_lines)


def test_fusion_changes_the_decode_and_weight_0_does_not(data, checkpoint, lm):
    rows = features.read_manifest(str(data / "test_digits.tsv"))
    wavs = [str(data.parent / "wav" / f"{r['id']}.wav") for r in rows]
    plain = transcribe.Transcriber(str(checkpoint))
    unweighted = transcribe.Transcriber(str(checkpoint), lm_path=str(lm), lm_weight=0.0)
    fused = transcribe.Transcriber(str(checkpoint), lm_path=str(lm), lm_weight=3.0)
    assert fused.generator.lm_model is not None and fused.generator.lm_weight == 3.0
    before = [plain(w) for w in wavs]
    assert [unweighted(w) for w in wavs] == before
    assert [fused(w) for w in wavs] != before


def generate_lines(data, checkpoint, results, extra=()):
    argv = [str(a) for a in [data, *speech_runs.TASK, "--gen-subset", "test_digits",
                             "--path", checkpoint, "--beam", "2", "--max-len-b", "12",
                             "--max-tokens", "20000", "--results-path", results, *extra]]
    args = options.parse_args_and_arch(options.get_generation_parser(), argv)
    generate_cli.main(convert_namespace_to_omegaconf(args))
    text = (results / "generate-test_digits.txt").read_text()
    return sorted(line for line in text.splitlines() if line.startswith("D-"))


def test_fairseq_generate_fuses_the_same_lm(data, checkpoint, lm, tmp_path):
    before = generate_lines(data, checkpoint, tmp_path / "plain")
    fused = generate_lines(data, checkpoint, tmp_path / "fused",
                           ["--lm-path", lm, "--lm-weight", "3"])
    assert len(fused) == len(before) > 0 and fused != before


def test_an_lm_of_another_dictionary_is_refused_in_one_line(data, checkpoint, lm, tmp_path,
                                                            capsys):
    other = tmp_path / "data"
    shutil.copytree(data, other, symlinks=True)
    lines = (other / "dict.txt").read_text().splitlines()
    (other / "dict.txt").write_text("\n".join([lines[1], lines[0]] + lines[2:]) + "\n")
    with pytest.raises(ValueError, match=r"--lm-path .*dict.txt \(\d+ symbols\) is not the "
                                         r"recogniser's"):
        transcribe.Transcriber(str(checkpoint), str(other), lm_path=str(lm))
    wav = next((data.parent / "wav").glob("*.wav"))
    with pytest.raises(SystemExit) as exit_:
        transcribe.main([str(wav), "--path", str(checkpoint), "--lm-path", str(tmp_path / "no.pt")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"transcribe.py: error: --lm-path {str(tmp_path / 'no.pt')!r}: no such file; must be a "
        "language model checkpoint (.pt) of train_speech_lm.py"]
