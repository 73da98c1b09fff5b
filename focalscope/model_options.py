"""Command-line options made from a Pydantic model's fields, so that a field added to a request model
(app.schemas.training) is a flag without an edit here.

Each field becomes `--field-name` with the field's type, default and description as help; a Literal
gives the choices, a list takes comma-separated values, a bool is --x / --no-x. A field marked
IdOrName (`corpus_id`) becomes `--corpus` and takes an id or a name, resolved by the caller. Values
are checked by the model itself, not here: the command line gives the same messages as the API.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Callable, Iterable

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from app.schemas.training import IdOrName

Resolver = Callable[[str], int]


def add_model_options(parser: argparse.ArgumentParser, model: type[BaseModel], *, skip: Iterable[str] = ()) -> None:
    """One option per field of `model` (but those in `skip`), named after the field."""
    for name, info in model.model_fields.items():
        if name not in skip:
            flag, options = _option(name, info)
            parser.add_argument(flag, dest=name, **options)


def model_values(args: argparse.Namespace, model: type[BaseModel], resolvers: dict[str, Resolver], *,
                 skip: Iterable[str] = ()) -> dict:
    """The parsed options of `model`'s fields, ids looked up by `resolvers[kind]` where an id or a name
    was given; to be validated by the model."""
    values = {}
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        value = getattr(args, name)
        reference = _id_or_name(info)
        values[name] = resolvers[reference.kind](value) if reference and value is not None else value
    return values


def _option(name: str, info: FieldInfo) -> tuple[str, dict]:
    reference = _id_or_name(info)
    flag = "--" + (name.removesuffix("_id") if reference else name).replace("_", "-")
    kind = _plain_type(info.annotation)
    required = info.default is PydanticUndefined and info.default_factory is None
    default = None if required else info.get_default(call_default_factory=True)
    options: dict = {"required": required, "default": default, "help": _help(info, default, reference),
                     "metavar": flag.removeprefix("--").replace("-", "_").upper()}
    if reference:
        options["type"] = str
    elif typing.get_origin(kind) is typing.Literal:
        options["choices"] = typing.get_args(kind)
        options["type"] = type(options["choices"][0])
        del options["metavar"]  # argparse shows the choices instead
    elif typing.get_origin(kind) is list:
        options["type"] = _comma_list(typing.get_args(kind)[0])
        options["help"] += " (comma-separated)"
    elif kind is bool:
        del options["metavar"]
        options["action"] = argparse.BooleanOptionalAction
    else:
        options["type"] = kind
    return flag, options


def _help(info: FieldInfo, default, reference: IdOrName | None) -> str:
    text = (info.description or "").rstrip(".")
    if reference:
        text += f" ({reference.kind} id or name)"
    if default is not None:
        text += f" (default {default})"
    return text


def _id_or_name(info: FieldInfo) -> IdOrName | None:
    return next((m for m in info.metadata if isinstance(m, IdOrName)), None)


def _plain_type(annotation):
    """`int | None` -> int: a missing option is None, the model's own default for optional fields."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (annotation,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    return annotation


def _comma_list(item: type) -> Callable[[str], list]:
    def parse(text: str) -> list:
        return [item(part.strip()) for part in text.split(",") if part.strip()]

    parse.__name__ = f"comma-separated {item.__name__}"  # argparse names the type in its error message
    return parse
