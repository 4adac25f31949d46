"""A tiny synthetic speech corpus (flite + espeak-ng) and fairseq speech-to-text runs on it."""
from pathlib import Path

from fairseq import distributed_utils, options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq_cli import generate as generate_cli
from fairseq_cli import train as train_cli

from examples.speech_recognition import prepare_speech
from fairseq_runs import PLUGIN, REPO, run_cli

TRAIN_VOICES = ["flite-awb", "flite-kal16", "espeak-en-us+m3"]
DEV_VOICES = ["espeak-en-gb+f3"]
TEST_VOICES = ["flite-slt", "espeak-en-029+m2"]
SENTENCES = ["the jury said it did", "she looked at the time", "in the morning he left"]
# a tiny s2t_transformer: 1 encoder and 1 decoder layer of width 32
TINY_S2T = ["--arch", "s2t_transformer_xs", "--encoder-layers", "1", "--decoder-layers", "1",
            "--encoder-embed-dim", "32", "--decoder-embed-dim", "32",
            "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64",
            "--encoder-attention-heads", "2", "--decoder-attention-heads", "2",
            "--conv-channels", "32"]
TASK = ["--user-dir", PLUGIN, "--task", "durnn_speech_to_text",
        "--required-batch-size-multiple", "1", "--cpu", "--num-workers", "0"]


def make_corpus(workdir: Path) -> Path:
    """Synthesise train (3 voices x (4 digit strings + 1 sentence)), dev (1 voice) and test
    (2 voices) sets and write the data directory; returns it."""
    sets = {
        "train": prepare_speech.utterances(TRAIN_VOICES, {"digits": 4, "sentence": 1},
                                           SENTENCES, seed=0, split="train"),
        "dev": prepare_speech.utterances(DEV_VOICES, {"digits": 2, "sentence": 1}, SENTENCES,
                                         seed=0, split="dev"),
        "test_digits": prepare_speech.utterances(TEST_VOICES, {"digits": 2}, [], seed=0,
                                                 split="test"),
    }
    return Path(prepare_speech.write_data(sets, str(workdir), vocab_size=40, specaugment=True,
                                          workers=2))


def train_argv(data: Path, save_dir: Path, model=TINY_S2T, updates: int = 3,
               extra=()) -> list:
    """fairseq-train's arguments; ``extra`` comes last, so it wins (e.g. another
    ``--criterion``)."""
    return [str(a) for a in [data, *TASK, "--train-subset", "train", "--valid-subset", "dev",
                             *model, "--criterion", "label_smoothed_cross_entropy",
                             "--optimizer", "adam", "--lr", "0.002", "--max-tokens", "6000",
                             "--max-update", updates, "--save-dir", save_dir,
                             "--no-epoch-checkpoints", "--no-progress-bar", "--seed", "1",
                             *extra]]


def train(data: Path, save_dir: Path, model=TINY_S2T, updates: int = 3, extra=()) -> None:
    """fairseq-train in this process (saves the start-up of a new one)."""
    args = options.parse_args_and_arch(options.get_training_parser(),
                                       train_argv(data, save_dir, model, updates, extra))
    distributed_utils.call_main(convert_namespace_to_omegaconf(args), train_cli.main)


def train_command(data: Path, save_dir: Path, updates: int = 1):
    """The fairseq-train command line itself (for its exit status and printed errors)."""
    return run_cli("fairseq-train", train_argv(data, save_dir, updates=updates), cwd=REPO)


def generate(data: Path, checkpoint: Path, results: Path, subset: str = "test_digits") -> str:
    """fairseq-generate --scoring wer in this process; returns its output file's text."""
    argv = [str(a) for a in [data, *TASK, "--gen-subset", subset, "--path", checkpoint,
                             "--beam", "2", "--max-len-b", "12", "--max-tokens", "20000",
                             "--scoring", "wer", "--results-path", results]]
    args = options.parse_args_and_arch(options.get_generation_parser(), argv)
    generate_cli.main(convert_namespace_to_omegaconf(args))
    return (results / f"generate-{subset}.txt").read_text()
