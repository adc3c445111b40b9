"""The README and docs/ against the code: every `kerascnn COMMAND [SUBCOMMAND] ... --flag` they write
(in code blocks and inline code) names a command of the click group `kerascnn.cli.main` and flags
that command takes; every docs/ page is linked from the README; every relative link (and its
#anchor) resolves; the README's layout table lists the package's layers bottom to top, as
tests/test_layers.py declares them.
"""
import functools
import re
from pathlib import Path

import click
import pytest

from kerascnn.cli import _Group, main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
# `kerascnn` as a command word: not part of a dotted name, a path or `kerascnn[onnx]`.
INVOCATION = re.compile(r"(?<![\w./\[-])kerascnn[ \t]+")
# Where one command's words end: a pipe, `;`, `&&`, a comment, a closing quote or parenthesis.
END = re.compile(r"\s\|\s|;|&&|(?:^|\s)#|['\"`)]")
FLAG = re.compile(r"--[a-z][a-z0-9-]*")
SHORT_FLAG = re.compile(r"-[a-zA-Z]")
WORD = re.compile(r"[a-z][a-z0-9-]*")


def code_texts(markdown: str):
    """The lines of fenced code blocks (backslash continuations joined) and the inline code spans."""
    texts = []
    for block in FENCE.findall(markdown):
        texts += block.replace("\\\n", " ").splitlines()
    prose = FENCE.sub("", markdown)
    texts += [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", prose)]
    return texts


def _commands(group: click.Group):
    """A group's commands by name, through click's own lookup: the CLI may register them lazily
    (kerascnn.cli imports a command's module when it is looked up), so `group.commands` alone can be
    empty."""
    ctx = click.Context(group)
    return {name: group.get_command(ctx, name) for name in group.list_commands(ctx)}


@functools.lru_cache(maxsize=None)
def commands():
    """{name: (command, {subcommand name: subcommand})} of `kerascnn`."""
    return {name: (c, _commands(c) if isinstance(c, click.Group) else {}) for name, c in _commands(main).items()}


def _options(command: click.Command):
    names = {"--help", "-h"}  # main's help_option_names, inherited by every command's context
    for p in command.params:
        if isinstance(p, click.Option):
            names.update(p.opts + p.secondary_opts)
    return names


def invocations(text: str):
    """(words, tokens) of each `kerascnn ...` in a line of code: the words up to where it ends."""
    for m in INVOCATION.finditer(text):
        rest = text[m.end():]
        end = END.search(rest)
        yield (rest[:end.start()] if end else rest).split()


def command_problems(tokens):
    """What is wrong with one `kerascnn` invocation (its tokens after the program name)."""
    problems, i = [], 0
    main_options = _options(main)
    while i < len(tokens) and tokens[i].startswith("-"):
        if tokens[i] not in main_options:
            problems.append(f"kerascnn has no option {tokens[i]}")
        i += 1
    if i == len(tokens):
        return problems
    name = tokens[i].rstrip(":,.")
    if not WORD.fullmatch(name):
        return problems  # a placeholder (`kerascnn COMMAND ...`), not a command
    following = tokens[i + 1] if i + 1 < len(tokens) else None
    if (name, following) in _Group.SUBCOMMANDS:  # `kerascnn stylize train` = stylize-train
        name, i = _Group.SUBCOMMANDS[(name, following)], i + 1
    if name not in commands():
        return problems + [f"no command `kerascnn {name}`"]
    (command, subcommands), label = commands()[name], f"kerascnn {name}"
    if isinstance(command, click.Group) and following and WORD.fullmatch(following):
        sub = subcommands.get(following)
        if sub is None:
            return problems + [f"no command `{label} {following}`"]
        command, label, i = sub, f"{label} {following}", i + 1
    options = _options(command)
    if getattr(command, "forwards_to", None):  # `kerascnn wavenet train` passes the rest on to `fit`
        options |= _options(commands()[command.forwards_to][0])
    for token in tokens[i + 1:]:
        flag = token.split("=")[0].rstrip(".,:")
        if (FLAG.fullmatch(flag) or SHORT_FLAG.fullmatch(flag)) and flag not in options:
            problems.append(f"`{label}` has no option {flag}")
    return problems


def page_command_problems(markdown: str):
    problems = []
    for text in code_texts(markdown):
        for tokens in invocations(text):
            problems += [f"{p}  (in: kerascnn {' '.join(tokens)})" for p in command_problems(tokens)]
    return problems


def _every_flag():
    flags = _options(main)
    for command, subcommands in commands().values():
        flags |= _options(command)
        for sub in subcommands.values():
            flags |= _options(sub)
    return flags


def page_flag_problems(markdown: str):
    """Flags named anywhere in code (comments and prose `--flag`s too) that no command takes."""
    every = _every_flag()
    return sorted({f"no command takes {flag}" for text in code_texts(markdown)
                   for flag in FLAG.findall(text) if flag not in every})


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: str):
    return {_slug(h) for h in re.findall(r"^#+\s+(.*)$", FENCE.sub("", markdown), re.M)}


def links(markdown: str):
    """The targets of the Markdown links and images outside code."""
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", FENCE.sub("", markdown))


def link_problems(page: Path, markdown: str):
    problems = []
    for target in links(markdown):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # http:, https:, mailto:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            problems.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(
                markdown if file == page else file.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading #{anchor} in {file.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_and_flag_written_exists(page):
    assert page_command_problems(page.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_flag_named_in_code_is_a_flag_of_some_command(page):
    assert page_flag_problems(page.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert link_problems(page, page.read_text(encoding="utf-8")) == []


def test_the_docs_are_there_and_every_page_is_linked_from_the_readme():
    assert len(PAGES) > 1
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(README.read_text(encoding="utf-8"))}
    assert [p.name for p in PAGES[1:] if p.resolve() not in linked] == []


def test_the_docs_find_commands_inline_in_blocks_and_over_continued_lines():
    """The scan sees what it checks (or a passing test would prove nothing)."""
    text = ("Run `kerascnn fit --model lenet5` or `kerascnn.fit()`.\n\n```bash\n"
            "kerascnn dream photo.jpg -o d.jpg \\\n    --layers mixed4   # a comment --not-read\n"
            "echo x | kerascnn models --format json\n```\n")
    found = [tokens for t in code_texts(text) for tokens in invocations(t)]
    assert found == [["dream", "photo.jpg", "-o", "d.jpg", "--layers", "mixed4"],
                     ["models", "--format", "json"], ["fit", "--model", "lenet5"]]


@pytest.mark.parametrize("text, expected", [
    ("```bash\nkerascnn fit --model lenet5 --no-such-flag 3\n```", "`kerascnn fit` has no option --no-such-flag"),
    ("`kerascnn evaluate m.keras --recipe resnet_cifar`", "`kerascnn evaluate` has no option --recipe"),
    ("`kerascnn frobnicate --model lenet5`", "no command `kerascnn frobnicate`"),
    ("`kerascnn visualize gradcam m.keras a.jpg --channels 0-7`", "`kerascnn visualize gradcam` has no option --channels"),
    ("`kerascnn visualize colours m.keras`", "no command `kerascnn visualize colours`"),
    ("```bash\nkerascnn stylize train --styles a.jpg \\\n    --frames 3\n```", "`kerascnn stylize-train` has no option --frames"),
    ("`kerascnn dream zoom photo.jpg --list-layers`", "`kerascnn dream-zoom` has no option --list-layers"),
    ("`kerascnn predict m.keras a.jpg -x`", "`kerascnn predict` has no option -x"),
    ("`kerascnn wavenet train --data notes:timgm6mb --no-such-flag 3`", "`kerascnn wavenet train` has no option --no-such-flag"),
    ("`kerascnn --verbose models`", "kerascnn has no option --verbose"),
])
def test_a_made_up_command_or_flag_is_caught(text, expected):
    assert any(p.startswith(expected) for p in page_command_problems(text))


@pytest.mark.parametrize("text", [
    "`kerascnn dream zoom photo.jpg --frames 3 -o z.gif`",
    "`kerascnn --debug fit --model lenet5 --epochs=3`",
    "`kerascnn visualize maximize vgg16 --channels 0-7`",
    "`kerascnn COMMAND ... --anything`",
])
def test_real_commands_and_placeholders_pass(text):
    assert page_command_problems(text) == []


def test_a_made_up_flag_in_a_comment_is_caught():
    assert page_flag_problems("```bash\nkerascnn fit   # then --made-up-flag\n```") == [
        "no command takes --made-up-flag"]


@pytest.mark.parametrize("target, expected", [
    ("[x](nowhere.md)", "nowhere.md: no such file"),
    ("![x](../bench/no-such.png)", "../bench/no-such.png: no such file"),
    ("[x](training.md#no-such-heading)", "training.md#no-such-heading: no heading #no-such-heading in training.md"),
])
def test_a_broken_link_is_caught(target, expected):
    assert link_problems(DOCS / "page.md", target) == [expected]


# --- the README's layout table ---------------------------------------------------------------------

def layout_modules(readme: str):
    """The modules and packages the README's layout table names, row by row, as dotted names."""
    section = readme.split("\n## Layout", 1)[1]
    table = re.search(r"((?:^\|.*\n)+)", section, re.M).group(1)
    rows = []
    for line in table.splitlines()[2:]:
        folder, names = "kerascnn", []
        for item in re.findall(r"`([^`]+)`", line.split("|")[1]):
            path = item.rstrip("/")
            if path == "apps":  # installed as kerascnn.apps
                names.append("kerascnn.apps")
                continue
            if "/" in path:
                folder, path = path.rsplit("/", 1) if path.endswith(".py") else (path, "")
            module = path[:-3] if path.endswith(".py") else path
            names.append(".".join(p for p in folder.split("/") + [module]
                                  if p and p != "__init__"))
        rows.append(names)
    return rows


def layout_problems(readme: str):
    from test_layers import LAYERS, layer_of

    rows = layout_modules(readme)
    named = [m for row in rows for m in row]
    problems = [f"the layout table leaves out {entries[0]}" for entries in LAYERS
                if not set(entries) & set(named)]
    packages = sorted("kerascnn." + p.parent.name for p in (ROOT / "kerascnn").glob("*/__init__.py"))
    problems += [f"the layout table leaves out the folder {p}" for p in packages if p not in named]
    order = [(layer_of(m), m) for m in named]
    problems += [f"{m} comes after {n}, a higher layer" for (a, n), (b, m) in zip(order, order[1:]) if b < a]
    return problems


def test_the_readme_layout_table_lists_the_layers_bottom_to_top():
    assert layout_problems(README.read_text(encoding="utf-8")) == []


def test_a_layout_table_out_of_order_or_incomplete_is_caught():
    readme = README.read_text(encoding="utf-8")
    runtime = next(line for line in readme.splitlines() if line.startswith("| `kerascnn/runtime/`"))
    cli = next(line for line in readme.splitlines() if line.startswith("| `kerascnn/cli/`"))
    swapped = readme.replace(runtime, "@@").replace(cli, runtime).replace("@@", cli)
    assert any("higher layer" in p for p in layout_problems(swapped))
    assert "the layout table leaves out kerascnn.runtime" in layout_problems(readme.replace(runtime + "\n", ""))
