"""Typer options built from the config dataclasses' declarations (edgefer.options): a command declares
`**options` and names its configs; each option's flag, default, range and help are written once, on the
config field, and the command line and `check(config)` both read them."""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from typing import List, Optional

import typer

from edgefer.options import Spec, default_of, flag, specs


def _cli_type(annotation):
    """A type Typer understands: `int | None` -> Optional[int]."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return Optional[_cli_type(inner[0])] if len(inner) == 1 else str
    if typing.get_origin(annotation) is list:   # a repeatable option
        return Optional[List[typing.get_args(annotation)[0]]]
    return annotation


def typer_option(name: str, field: dataclasses.Field, spec: Spec):
    default = default_of(field)
    if default is dataclasses.MISSING:   # a field without a default is a required option
        default = ...
    decls = [spec.flag or flag(name, spec)]
    if field.type in ("bool", bool) and spec.flag is None:
        decls = [f"{decls[0]}/--no-{decls[0][2:]}"]
    decls += list(spec.aliases)
    if isinstance(default, list):   # a repeatable option: Typer's "not given" is None
        default = None
    extra = {}
    # Typer enforces closed ranges only; a range with a reason to give (`expected`) or an open bound (> 0) is
    # left to check(config), whose one line names both
    if spec.min is not None and not spec.expected and not spec.min_open:
        extra["min"] = spec.min
    if spec.max is not None and not spec.expected and not spec.max_open:
        extra["max"] = spec.max
    if spec.show_default is not None:
        extra["show_default"] = spec.show_default
    if spec.envvar:
        extra["envvar"] = spec.envvar
    help_text = spec.help + (f" One of: {', '.join(spec.choices)}." if spec.choices and len(spec.choices) > 8 else "")
    return typer.Option(default, *decls, help=help_text, **extra)


def config_options(*classes, skip: tuple[str, ...] = (), only: dict | None = None):
    """Decorator: append the declared command-line options of `classes` (first declaration wins) to a Typer
    command that takes them as `**options`; `only={cls: names}` takes just those fields of a class."""
    def decorate(func):
        signature = inspect.signature(func)
        params = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        names = {p.name for p in params}
        for cls in classes:
            hints = typing.get_type_hints(cls)
            for name, (field, spec) in specs(cls).items():
                if not spec.cli or name in names or name in skip or (only and cls in only and name not in only[cls]):
                    continue
                names.add(name)
                params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                                default=typer_option(name, field, spec),
                                                annotation=_cli_type(hints[name])))
        func.__signature__ = signature.replace(parameters=params)
        return func
    return decorate


def pick(cls, options: dict) -> dict:
    """The entries of `options` that are fields of config class `cls`."""
    fields = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in options.items() if k in fields}
