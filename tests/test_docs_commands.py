"""Every shell command shown in the README and the docs is checked against the program it runs.

Each command line of a ```bash block goes to the parser of its command (the same
``build_parser()`` the command uses), so a renamed flag, a removed subcommand, a config that is
not shipped, a config key that does not exist or a make target that is gone fails here.  The
commands themselves run at tiny sizes in the CLI tests (``tests/cli``, ``tests/test_*_script.py``,
the slow tier's ``train.py`` runs); those that need GPUs, a dataset or a trained checkpoint say
so in the command itself (``--gpus``, a ``/data/...`` path, a checkpoint path).
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from spacetorch.cli.main import COMMANDS

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
#: the two programs kept for users of the original TDANN code -> the command they are
SCRIPTS = {"train.py": "train", "scripts/save_retinotopic_positions.py": "positions"}
#: shell lines that are not a spacetorch command, and why they are fine unchecked here
NOT_COMMANDS = {
    "pip": "installs; tests/test_installed_package.py installs the package the README's way (slow tier)",
    "cd": "moves into a folder",
    "git": "clones the repository",
    "du": "reports a folder's size",
}


def shell_commands() -> list[tuple[str, str]]:
    """``(page:line, command)`` of every command line of a ```bash block, continuations joined."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for block in re.finditer(r"```bash\n(.*?)```", text, re.S):
            first_line = text[: block.start()].count("\n") + 2
            lines = block[1].splitlines()
            i = 0
            while i < len(lines):
                start, command = i, lines[i]
                while command.rstrip().endswith("\\") and i + 1 < len(lines):
                    i += 1
                    command = command.rstrip()[:-1] + " " + lines[i].strip()
                i += 1
                words = shlex.split(command, comments=True)
                if words:
                    found.append((f"{page.relative_to(REPO)}:{first_line + start}", " ".join(shlex.quote(w) for w in words)))
    return found


COMMAND_LINES = shell_commands()


def _parse(module: str, args: list[str]) -> argparse.Namespace:
    parser = importlib.import_module(f"spacetorch.cli.{module}").build_parser()
    try:
        if module == "train":
            return parser.parse_intermixed_args(args)
        return parser.parse_args(args)
    except SystemExit as stop:
        if stop.code == 0 and ("--help" in args or "-h" in args):
            return argparse.Namespace()
        raise AssertionError(f"the parser refused {args}") from None


def _check_train(args: list[str]) -> None:
    from spacetorch.vissl.config import available_configs, compose

    namespace = _parse("train", args)
    if not getattr(namespace, "overrides", None):
        return
    overrides = [o for o in namespace.overrides if "<" not in o]  # placeholders such as <node 0 host>
    names = [o.split("=", 1)[1] for o in overrides if o.startswith("config=")]
    assert len(names) == 1 and names[0] in available_configs(), f"config=NAME must name a shipped config: {names}"
    cfg = compose(overrides)
    for override in overrides:
        key = override.split("=", 1)[0]
        if key.startswith("config."):
            node = cfg
            for part in key.removeprefix("config.").split("."):
                assert part in node, f"{key}: {part!r} is not a key of config {names[0]}"
                node = node[part]


def _check_make(args: list[str]) -> None:
    targets = [a for a in args if not a.startswith("-") and "=" not in a]
    for target in targets:
        # -n: print the recipe without running it; a missing target fails with "No rule to make target"
        done = subprocess.run(["make", "-n", "-C", str(REPO), target], capture_output=True, text=True, timeout=60)
        assert "No rule to make target" not in done.stderr, done.stderr


def check(words: list[str]) -> None:
    program, args = words[0], words[1:]
    if program in NOT_COMMANDS:
        return
    if program == "make":
        return _check_make(args)
    if program.endswith("python") or program.endswith("python3"):
        if args[:2] == ["-m", "spacetorch"]:
            program, args = "spacetorch", args[2:]
        elif args and args[0] == "-c":
            return compile(args[1], "<docs>", "exec") and None  # a one-line program: it must be Python
        elif args and args[0] == "bench/gpu_check.py":
            from bench import gpu_check  # noqa: F401  (its own tests run it)

            return None
        elif args and args[0] in SCRIPTS:
            program, args = "spacetorch", [SCRIPTS[args[0]], *args[1:]]
        elif args and args[0].startswith("bench/"):
            assert (REPO / args[0]).is_file(), f"{args[0]} does not exist"
            return None
        else:
            raise AssertionError(f"no check for python {args[:1]}: add one to tests/test_docs_commands.py")
    if program == "spacetorch":
        if not args or args[0] in ("--help", "-h", "--version"):
            return None
        name = args[0]
        assert name in COMMANDS, f"spacetorch has no command {args[0]!r}"
        module = COMMANDS[name].module
        return _check_train(args[1:]) if module == "train" else _parse(module, args[1:]) and None
    raise AssertionError(f"no check for {program!r}: add one to tests/test_docs_commands.py")


def test_the_docs_show_commands() -> None:
    assert len(COMMAND_LINES) > 40
    assert any(where.startswith("README.md:") for where, _ in COMMAND_LINES)


def _without_usage_brackets(words: list[str]) -> list[str]:
    """``[--boxes DIR]`` (an optional part, in usage notation) -> ``--boxes DIR``."""
    out, inside = [], False
    for word in words:
        if word.startswith("[-"):
            word, inside = word[1:], True
        if inside and word.endswith("]"):
            word, inside = word[:-1], False
        out.append(word)
    return out


@pytest.mark.parametrize(("where", "command"), COMMAND_LINES, ids=[w for w, _ in COMMAND_LINES])
def test_every_command_in_the_docs_is_accepted_by_its_program(where: str, command: str) -> None:
    words = _without_usage_brackets(shlex.split(command))
    assert "$" not in command, f"{where}: shell variables hide the arguments from this check"
    check(words)


@pytest.mark.parametrize("command", [
    "spacetorch swapopt --checkpoint c.torch --positions p --nosuch-flag 1",  # a flag that is gone
    "spacetorch evaluate-td --help",  # a name of an earlier version
    "python scripts/swapopt.py --help",  # a script that is gone: one door per job
    "spacetorch no-such-command --help",
    "python train.py config=no_such_config",
    "python train.py config=demo_cpu_simclr_spatial_resnet18 config.OPTIMIZER.no_such_key=1",
    "make no-such-target",
    "python scripts/no_such_script.py",
])
def test_the_check_refuses_a_command_that_drifted_from_its_program(command: str) -> None:
    from spacetorch.vissl.config import ConfigError

    with pytest.raises((AssertionError, ConfigError)):
        check(shlex.split(command))
