"""Every option of every command explains itself in ``hamnet <command> --help``."""

from __future__ import annotations

import argparse

import pytest

from hamnet import cli


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, its parser) for every command and nested command (``plot video``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield (*path, name), child
                yield from _commands(child, (*path, name))


def _undocumented(parser: argparse.ArgumentParser) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if not action.help or action.help == argparse.SUPPRESS or not action.help.strip():
            missing.append("/".join(action.option_strings) or action.dest)
    return missing


COMMANDS = dict(_commands(cli.build_parser()))


def test_the_walk_reaches_every_command_and_nested_command():
    names = {" ".join(path) for path in COMMANDS}
    assert {"demo", "train", "test", "extract", "plot video", "plot map"} <= names
    assert len(names) >= 17


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_option_has_help_text(path):
    assert _undocumented(COMMANDS[path]) == [], f"hamnet {' '.join(path)}"


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_has_a_one_line_summary(path):
    parent = cli.build_parser() if len(path) == 1 else COMMANDS[path[:-1]]
    (group,) = [a for a in parent._actions if isinstance(a, argparse._SubParsersAction)]
    summaries = {choice.dest: choice.help for choice in group._choices_actions}
    assert summaries.get(path[-1]), f"hamnet {' '.join(path)}"


def test_the_walk_finds_an_option_without_help():
    parser = argparse.ArgumentParser()
    parser.add_argument("--told", help="explained")
    parser.add_argument("--silent")
    parser.add_argument("things", nargs="+")
    assert _undocumented(parser) == ["--silent", "things"]


@pytest.mark.parametrize("name", [name for name, _ in cli.COMMANDS])
def test_a_named_command_gets_the_same_parser_alone(name):
    """``hamnet NAME ...`` builds only NAME's parser: the same help text and the same
    parsed arguments as from the whole parser."""
    alone = dict(_commands(cli.build_parser(name)))
    assert {path for path in alone if path[0] == name} == {p for p in COMMANDS if p[0] == name}
    for path, parser in alone.items():
        assert parser.format_help() == COMMANDS[path].format_help()
    assert cli.named_command(["-v", name, "--help"]) == name


def test_eval_arguments_parse_alike():
    argv = ["-v", "eval", "--gt", "g.json", "--pred", "p.json", "--tiou", "0.5", "--per-class"]
    alone, whole = cli.build_parser("eval").parse_args(argv), cli.build_parser().parse_args(argv)
    assert vars(alone) == vars(whole) and alone.per_class and alone.verbose


def test_other_words_get_the_whole_parser(capsys):
    assert cli.named_command([]) is None and cli.named_command(["--version"]) is None
    assert cli.named_command(["evaluate", "--gt", "x"]) is None
    with pytest.raises(SystemExit):
        cli.main(["evaluate"])
    assert "invalid choice: 'evaluate' (choose from" in capsys.readouterr().err
