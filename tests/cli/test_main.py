"""The ``spacetorch`` command: every subcommand listed and reachable, one error style, and no
module that reads files by a path relative to the source tree."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from pathlib import Path

import pytest

from spacetorch.cli.main import COMMANDS, main

REPO = Path(__file__).resolve().parents[2]


def _spacetorch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spacetorch", *args], capture_output=True, text=True, cwd=cwd)


def test_help_lists_every_command_and_each_has_help_with_an_example(capsys) -> None:
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    for name in COMMANDS:
        assert re.search(rf"^  {re.escape(name)}\s+\S", listed, re.M), name
    for name in COMMANDS:
        if name == "train":  # it replaces its process with `python -m spacetorch.cli.train`
            result = _spacetorch(name, "--help")
            assert result.returncode == 0, result.stderr
            text = result.stdout
        else:
            with pytest.raises(SystemExit) as exited:
                main([name, "--help"])
            assert exited.value.code == 0, name
            text = capsys.readouterr().out
        assert text.startswith(f"usage: spacetorch {name}"), text[:80]
        assert "examples" in text and f"spacetorch {name}" in text.split("examples", 1)[1], name
        assert "np.float64" not in text and "(default: None)" not in text, name


def test_one_name_per_job_and_earlier_names_point_to_it(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["evaluate-td", "--help"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "spacetorch: error: 'evaluate-td' is now named 'evaluate-tdam': spacetorch evaluate-tdam --help")
    with pytest.raises(SystemExit):
        main(["swapop"])
    assert "did you mean 'swapopt'?" in capsys.readouterr().err
    scripts = sorted(path.name for path in (Path(__file__).resolve().parents[2] / "scripts").iterdir())
    assert scripts == ["save_retinotopic_positions.py"], "scripts/ keeps only the original TDANN script"
    from spacetorch.cli.evaluate_td import build_parser

    assert build_parser().prog == "spacetorch evaluate-tdam"


def test_the_command_tables_of_the_readme_and_the_docs_list_every_command_in_order() -> None:
    repo = Path(__file__).resolve().parents[2]
    for page in (repo / "README.md", repo / "docs" / "commands.md"):
        listed = re.findall(r"^\| `spacetorch ([a-z0-9-]+)", page.read_text(), re.M)
        assert listed == list(COMMANDS), f"{page.name}'s command table differs from spacetorch.cli.main.COMMANDS"


def test_the_guarantees_page_states_each_commands_guarantees_and_each_command_opens_its_outputs() -> None:
    """docs/reliability.md has a row for every command, and every command that writes opens its
    outputs through the one writer (spacetorch._files.Output) rather than writing on its own."""
    import importlib
    import inspect

    repo = Path(__file__).resolve().parents[2]
    rows = re.findall(r"^\| `([a-z0-9-]+)", (repo / "docs" / "reliability.md").read_text(), re.M)
    assert list(dict.fromkeys(rows)) == list(COMMANDS), "docs/reliability.md's table differs from the commands"
    for name, (module, _) in COMMANDS.items():
        source = inspect.getsource(importlib.import_module(f"spacetorch.cli.{module}"))
        assert "open_output(" in source or "open_comparison(" in source, f"spacetorch {name} does not open its outputs"


def test_an_unknown_command_and_a_user_error_get_one_line_and_exit_2(tmp_path: Path) -> None:
    result = _spacetorch("nosuch")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("spacetorch: error: unknown command 'nosuch'; the commands are train,")
    (tmp_path / "data").mkdir()
    result = _spacetorch("demo-data", "--out", str(tmp_path / "data"))
    assert result.returncode == 2 and result.stderr == f"spacetorch demo-data: error: --out {tmp_path / 'data'} exists; delete it or choose another --out\n"


@pytest.mark.slow  # a new interpreter (train execs one)
def test_train_runs_as_its_own_module_and_names_itself(tmp_path: Path) -> None:
    result = _spacetorch("train", "config=nosuch", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("spacetorch train: error: no config named 'nosuch'")
    assert "demo_cpu_simclr_spatial_resnet18" in result.stderr, "the shipped configs are found outside the checkout"


def test_no_module_reads_files_by_a_path_relative_to_the_source_tree() -> None:
    """Installed elsewhere, ``parents[...]`` of a module is site-packages: the configs come from
    the package ``spacetorch.configs`` instead."""
    offenders = []
    for path in sorted((REPO / "spacetorch").rglob("*.py")):
        if path == REPO / "spacetorch" / "configs" / "__init__.py":  # the package's own copy first, the checkout's else
            continue
        text = path.read_text()
        if re.search(r"__file__\)?\.resolve\(\)\.parents\[|\.parents\[\d\]\s*/\s*\"(configs|train\.py|scripts|data)", text):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_the_configs_ship_inside_the_package_without_a_link_or_a_top_level_package() -> None:
    from spacetorch.vissl.config import CONFIG_DIR, SEARCH_PATH, available_configs

    assert CONFIG_DIR == REPO / "configs" / "config", "one set of files: configs/config/"
    assert SEARCH_PATH == f"file://{CONFIG_DIR.parent}"
    assert "simclr_spatial_resnet18" in available_configs() and (CONFIG_DIR / "dataset_catalog.json").is_file()
    assert not (REPO / "spacetorch" / "configs").is_symlink() and not (REPO / "configs" / "__init__.py").exists()
    setup = (REPO / "setup.py").read_text()
    assert '"spacetorch.configs.config": "configs/config"' in setup
    patterns = re.findall(r'"([^"]+)"', re.search(r'"spacetorch.configs.config": \[([^]]*)\]', setup)[1])
    files = [p.relative_to(CONFIG_DIR).as_posix() for p in CONFIG_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    left_out = [f for f in files if f != "__init__.py" and not any(fnmatch.fnmatch(f, pattern) and f.count("/") == pattern.count("/")
                                                                   for pattern in patterns)]  # fmt: skip
    assert not left_out, f"shipped config files the wheel would leave out: {left_out}"


def test_every_option_of_every_command_has_help() -> None:
    import argparse
    import importlib

    def parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
        found = [parser]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    found += parsers(sub)
        return found

    missing = []
    for command in COMMANDS.values():
        for parser in parsers(importlib.import_module(f"spacetorch.cli.{command.module}").build_parser()):
            missing += [f"{parser.prog} {a.option_strings[-1]}" for a in parser._actions
                        if a.option_strings and a.help != argparse.SUPPRESS
                        and not re.sub(r"\[default:.*?\]|\(default:.*?\)", "", a.help or "").strip()]
    assert missing == []


def test_every_command_the_dispatcher_runs_releases_its_locks_itself() -> None:
    """``run`` relies on each command's ``main`` being wrapped by ``_arguments.command``."""
    import importlib

    unwrapped = [name for name, entry in COMMANDS.items() if name != "train"
                 and not hasattr(importlib.import_module(f"spacetorch.cli.{entry.module}").main, "__wrapped__")]
    assert unwrapped == []
