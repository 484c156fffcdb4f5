"""Options declared once: a config dataclass field carries its default, help and range (`option(...)`), and
from that one declaration come the command line's options (edgefer.cli builds them) and `check(config)`, the
range check every config runs before it loads anything. Ultralytics' cfg/default.yaml + check_cfg and
MediaPipe's options dataclasses are the models. A leaf."""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, dataclass

from edgefer.errors import OptionError


@dataclass(frozen=True)
class Spec:
    help: str
    min: float | None = None
    max: float | None = None
    min_open: bool = False           # the value must be > min (not >=)
    max_open: bool = False           # the value must be < max
    choices: tuple | None = None
    flag: str | None = None          # the command-line name when it is not --field-name (--json; --flip/--no-flip)
    show_default: str | bool | None = None
    envvar: str | None = None
    expected: str | None = None      # what an error says was expected, when the range does not say it
    cli: bool = True                 # False: a config field with no command-line option
    aliases: tuple[str, ...] = ()    # further names of the option (--out for --project)


def option(default=MISSING, *, default_factory=MISSING, **spec) -> dataclasses.Field:
    """A dataclass field with its option spec: `threads: int = option(1, min=1, max=256, help="...")`."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"option": Spec(**spec)})


def like(config_class, name: str) -> dataclasses.Field:
    """The same option on another config: `tta: bool = like(PipelineOptions, "tta")` (one declaration)."""
    source = next(f for f in dataclasses.fields(config_class) if f.name == name)
    return dataclasses.field(default=source.default, default_factory=source.default_factory,
                             metadata=source.metadata)


def specs(config) -> dict[str, tuple[dataclasses.Field, Spec]]:
    """Field name -> (field, spec) of every declared option of a config class or instance."""
    return {f.name: (f, f.metadata["option"]) for f in dataclasses.fields(config) if "option" in f.metadata}


def flag(name: str, spec: Spec) -> str:
    """The option's name on the command line (a switch's positive form: --flip of --flip/--no-flip)."""
    return (spec.flag or "--" + name.replace("_", "-")).split("/")[0]


def default_of(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not MISSING else f.default


def expected(spec: Spec) -> str:
    if spec.expected:
        return spec.expected
    if spec.choices:
        return "one of " + ", ".join(map(str, spec.choices))
    low = None if spec.min is None else (">" if spec.min_open else ">=") + f" {spec.min:g}"
    high = None if spec.max is None else ("<" if spec.max_open else "<=") + f" {spec.max:g}"
    return "a value " + " and ".join(p for p in (low, high) if p) if (low or high) else "a valid value"


def violates(value, spec: Spec) -> bool:
    if value is None or isinstance(value, (list, tuple, dict)):
        return False
    if spec.choices is not None:
        return value not in spec.choices
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if spec.min is not None and (value <= spec.min if spec.min_open else value < spec.min):
        return True
    return spec.max is not None and (value >= spec.max if spec.max_open else value > spec.max)


def check(config) -> None:
    """Raise OptionError naming the first option outside its declared range or choices."""
    for name, (_, spec) in specs(config).items():
        value = getattr(config, name)
        if violates(value, spec):
            raise OptionError(f"{flag(name, spec)} {value}: expected {expected(spec)}")
