"""The README's option table names every model option, and nothing that does not exist."""
import re
from dataclasses import fields
from pathlib import Path

from durnn_plugin.models.durnn_lm import DuRNNLanguageModelConfig

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_lists_every_model_option():
    text = README.read_text()
    table = text[text.index("### Model options"):text.index("### Constraints")]
    listed = set(re.findall(r"^\| `--([a-z0-9-]+)` \|", table, re.M))
    options = {f.name.replace("_", "-") for f in fields(DuRNNLanguageModelConfig)
               if not f.name.startswith("_")}
    assert listed == options
