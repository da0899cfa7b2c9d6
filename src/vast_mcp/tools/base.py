"""Shared glue for tools: strict schemas, annotation presets, error translation.

Tools are thin: they validate arguments (pydantic, strict), call a domain
function, and return a compact model. Anticipated failures become tool errors
whose text says what to do next; anything else is a crash the SDK sanitises.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, ValidationError

from vast_mcp.credentials import KeyUnavailableError
from vast_mcp.provisioning.errors import UserFacingError
from vast_mcp.services import Services
from vast_mcp.vast import VastError

P = ParamSpec("P")
R = TypeVar("R")

Kind = Literal["read", "local", "write"]

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True)
LOCAL_SETTING = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


def writes(*, destructive: bool, idempotent: bool) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=False, destructive_hint=destructive, idempotent_hint=idempotent, open_world_hint=True
    )


@dataclass(frozen=True)
class ToolSpec:
    fn: Callable[..., Awaitable[Any]]
    kind: Kind
    title: str
    annotations: ToolAnnotations


def services(ctx: Context) -> Services:
    state = ctx.request_context.lifespan_context
    assert isinstance(state, Services)
    return state


def reports_failures(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn anticipated failures into tool errors the model can act on."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except (VastError, UserFacingError, KeyUnavailableError) as exc:
            raise ToolError(str(exc)) from exc

    return wrapper


def with_text(fn: Callable[P, Awaitable[Any]]) -> Callable[P, Awaitable[Any]]:
    """The tool's result as a ``CallToolResult``: ``structuredContent`` is the whole result, and the
    SDK still validates it against the output model; the text block, which is what most clients
    put in the model's context, is the short summary of ``tools.text.as_text`` instead of the SDK's
    indented JSON.

    The return annotation ``Annotated[CallToolResult, Model]`` is the SDK's documented way to
    return a ``CallToolResult`` and keep ``Model`` as the output schema.
    """
    signature = inspect.signature(fn, eval_str=True)
    model = signature.return_annotation
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return fn  # not a typed result: the SDK's own conversion

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        from vast_mcp.tools.text import as_text  # the summaries import every result model

        result = await fn(*args, **kwargs)
        if not isinstance(result, model):
            return result
        return CallToolResult(
            content=[TextContent(type="text", text=as_text(result))],
            structured_content=result.model_dump(mode="json", by_alias=True),
        )

    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        return_annotation=Annotated[CallToolResult, model]
    )
    return wrapper


def compact_schema(schema: Any, *, keep_descriptions: bool = True) -> Any:
    """The same JSON schema in fewer bytes (a model pays for every tools/list byte, every turn),
    in the portable subset every function-calling dialect accepts.

    Drops pydantic's titles (they repeat property names) and ``"default": null``. An optional
    property whose absence already means null (pydantic's ``X | None = None``, written
    ``anyOf: [X, {type: null}]``) is written as just ``X``: it is simply optional. Type arrays and
    ``null`` unions are what single-``type`` dialects (Gemini's function declarations, OpenAPI 3.0)
    reject. Validation is unchanged: the argument model still accepts an explicit null, which
    means the same as leaving the argument out. Where null means something else (a required
    property, a non-null default, an array item) the ``anyOf`` stays, and the tests flag it.
    """

    def _without_null_arm(prop: Any) -> Any:
        """``{anyOf: [X, {type: null}], ...}`` as ``{...X, ...}`` when null means "not given"."""
        if not isinstance(prop, dict) or "default" in prop:  # a non-null default: null differs from absent
            return prop
        arms = prop.get("anyOf")
        if not isinstance(arms, list) or {"type": "null"} not in arms:
            return prop
        rest = [arm for arm in arms if arm != {"type": "null"}]
        outer = {k: v for k, v in prop.items() if k != "anyOf"}
        if len(rest) == 1 and isinstance(rest[0], dict) and not set(rest[0]) & set(outer):
            return {**rest[0], **outer}
        return {"anyOf": rest, **outer} if rest else prop

    if isinstance(schema, list):
        return [compact_schema(item, keep_descriptions=keep_descriptions) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "description" and not keep_descriptions and isinstance(value, str):
            continue
        if key == "default" and value is None:
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {n: compact_schema(sub, keep_descriptions=keep_descriptions) for n, sub in value.items()}
        else:
            out[key] = compact_schema(value, keep_descriptions=keep_descriptions)
    properties = out.get("properties")
    if isinstance(properties, dict):
        required = set(out.get("required", ()))
        out["properties"] = {
            name: prop if name in required else _without_null_arm(prop) for name, prop in properties.items()
        }
    return out


def outline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An output schema that names every top-level field (each is always present) and no more:
    the full schema would cost every client's context on every turn, while the result itself is
    validated against the full model before it leaves, and the tool descriptions say what the
    fields mean.
    """
    return {"type": "object", "required": list(schema.get("properties", {}))}


# Built tools are immutable at run time, so each spec is built once per process (building all
# of them costs a few hundred milliseconds; tests create a server per connection).
_built: dict[int, tuple[ToolSpec, Tool]] = {}


def strict_tool(spec: ToolSpec) -> Tool:
    """A tool whose schema says ``additionalProperties: false`` and whose validation agrees."""
    cached = _built.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    tool = _build_strict_tool(spec)
    _built[id(spec)] = (spec, tool)
    return tool


class StrictTool(Tool):
    """A tool whose argument errors read as plain sentences, never as validator internals."""

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        try:
            self.fn_metadata.validate_arguments(arguments)
        except ValidationError as exc:
            allowed = sorted(self.fn_metadata.arg_model.model_fields)
            raise ToolError(f"Error executing tool {self.name}: {argument_errors(exc, allowed)}") from None
        return await super().run(arguments, context, convert_result)


_PHRASES = (
    ("Input should be a valid integer", "must be a whole number"),
    ("Input should be a valid number", "must be a number"),
    ("Input should be a valid boolean", "must be true or false"),
    ("Input should be a valid string", "must be text"),
    ("Input should be a valid list", "must be a list"),
    ("Input should be a valid date", "must be a date (YYYY-MM-DD)"),
    ("Input should be", "must be"),
    ("String should match pattern", "has characters or a form that is not allowed; expected pattern"),
    ("String should have", "must have"),
    ("List should have", "must have"),
    ("Value error, ", ""),
)


def argument_errors(exc: ValidationError, allowed: list[str]) -> str:
    """``"Invalid arguments: instance_id must be ...; 'x' is not an argument (allowed: ...)."``

    Names the argument and what is allowed; never repeats the value given (it may be a secret).
    """
    problems: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
        where = where.lstrip(".") or "the arguments"
        if error["type"] == "extra_forbidden":
            problems.append(f"{where!r} is not an argument of this tool (allowed: {', '.join(allowed) or 'none'})")
        elif error["type"] == "missing":
            problems.append(f"{where} is required")
        else:
            message = str(error["msg"])
            for pydantic_words, plain in _PHRASES:
                if message.startswith(pydantic_words):
                    message = plain + message[len(pydantic_words) :]
                    break
            message = message.split(",", 1)[0] if message.startswith("must be a whole number") else message
            problems.append(f"{where} {message}")
    return "Invalid arguments: " + "; ".join(problems) + ". Nothing was done."


def _build_strict_tool(spec: ToolSpec) -> Tool:
    description = " ".join((spec.fn.__doc__ or "").split())  # one paragraph, no indentation bytes
    tool = Tool.from_function(
        with_text(reports_failures(spec.fn)),
        title=spec.title,
        description=description,
        annotations=spec.annotations,
        structured_output=True,
    )
    base = tool.fn_metadata.arg_model
    strict: type[ArgModelBase] = type(
        base.__name__, (base,), {"model_config": ConfigDict(extra="forbid"), "__module__": __name__}
    )
    tool.fn_metadata.arg_model = strict
    tool.parameters = compact_schema(strict.model_json_schema(by_alias=True))
    if tool.fn_metadata.output_schema is not None:
        # Output field meanings are in the tool descriptions; the schema keeps the top-level shape.
        tool.fn_metadata.output_schema = outline_schema(tool.fn_metadata.output_schema)
    return StrictTool.model_construct(**dict(tool))
