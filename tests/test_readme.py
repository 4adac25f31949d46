"""The documentation stays true: README length, links, option tables, and no build history.

* ``README.md`` has at most 250 lines.
* Every relative link in every Markdown file of the repository points to a file inside it, and
  a ``#fragment`` to a heading of that file (GitHub's anchor rule).
* The README's option tables name every option of the plugin's models, tasks and criteria (found
  through fairseq's registries, so a new option fails here until it is listed), and nothing else.
* No Markdown file speaks of the work periods it was built in (one word is checked, below).
"""
import argparse
import re
import subprocess
from dataclasses import fields

from fairseq.models import MODEL_DATACLASS_REGISTRY
from fairseq.registry import REGISTRIES
from fairseq.tasks import TASK_DATACLASS_REGISTRY, TASK_REGISTRY

import durnn_plugin  # noqa: F401 (registers the plugin's models, tasks and criteria)
from durnn_plugin.modules import StackOptions
from fairseq_runs import REPO

README = REPO / "README.md"
MAX_README_LINES = 250
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.M)
OPTION_ROW = re.compile(r"^\| `--([a-z0-9-]+)` \|", re.M)
# set by the speech_to_text task from the data's config.yaml, named in the text, not the table
SET_BY_TASK = {"input_feat_per_channel", "input_channels", "speaker_to_id"}
SIDES = ("encoder", "decoder")


def markdown_files():
    """The repository's Markdown files: tracked, and untracked ones git does not ignore."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                          "*.md"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return sorted({REPO / line for line in out.splitlines() if (REPO / line).is_file()})


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path) -> set:
    return {anchor(h) for h in HEADING.findall(FENCE.sub("", path.read_text()))}


def broken_links(path) -> list:
    broken = []
    for target in LINK.findall(FENCE.sub("", path.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if REPO.resolve() not in dest.parents and dest != REPO.resolve():
            broken.append(f"{target}: outside the repository")
        elif not dest.exists():
            broken.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{fragment}")
    return broken


def plugin_options() -> set:
    """Command-line names (``_`` form) of every option the plugin adds to fairseq."""
    configs = [dc for dc in MODEL_DATACLASS_REGISTRY.values()]
    configs += [dc for dc in TASK_DATACLASS_REGISTRY.values()]
    configs += [dc for dc in REGISTRIES["criterion"]["dataclass_registry"].values()]
    names = set()
    for config in configs:
        if not config.__module__.startswith("durnn_plugin"):
            continue
        for f in fields(config):
            interpolated = isinstance(f.default, str) and f.default.startswith("${")
            if not (f.name.startswith("_") or f.name == "data" or interpolated):
                names.add(f.name)
    for task in set(TASK_REGISTRY.values()):  # argparse tasks: what add_args adds to the base's
        if task.__module__.startswith("durnn_plugin") and task not in TASK_DATACLASS_REGISTRY.values():
            own, base = argparse.ArgumentParser(), argparse.ArgumentParser()
            task.add_args(own)
            super(task, task).add_args(base)
            names |= {a.dest for a in own._actions} - {a.dest for a in base._actions}
    per_side = {f"{side}_{f.name}" for side in SIDES for f in fields(StackOptions)}
    return names - per_side - SET_BY_TASK


def options_section() -> str:
    text = README.read_text()
    start = text.index("\n## Options")
    return text[start:text.index("\n## ", start + 1)]


def test_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines, at most {MAX_README_LINES}"


def test_every_relative_link_resolves_inside_the_repository():
    files = markdown_files()
    assert README in files and len(files) > 5
    broken = {str(p.relative_to(REPO)): b for p in files if (b := broken_links(p))}
    assert not broken


def test_option_tables_name_every_option_and_nothing_else():
    section = options_section()
    listed = {name.replace("-", "_") for name in OPTION_ROW.findall(section)}
    options = plugin_options()
    assert {"short_rho", "state_cache", "seq_len", "pooling", "min_source_frames"} <= options
    assert not options - listed, f"options missing from the README's tables: {options - listed}"
    assert not listed - options, f"README lists options that do not exist: {listed - options}"
    for name in SET_BY_TASK:
        assert f"`--{name.replace('_', '-')}`" in section


def test_no_markdown_file_narrates_work_sessions():
    found = [f"{p.relative_to(REPO)}:{n}" for p in markdown_files()
             for n, line in enumerate(p.read_text().splitlines(), 1)
             if re.search(r"\bsessions?\b", line, re.I)]
    assert not found
