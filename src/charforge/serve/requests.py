"""The API's request bodies as pydantic models: strict types (no "0.5" for a number, no
`true` for 1, no object for a model's name), no unknown fields, finite numbers, bounded
lists. The OpenAPI description is generated from the same models, so what the schema
promises is what the server checks. A mistake is one line naming the field."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from ..core.bounds import SEED, Range
from ..core.errors import CharforgeError

MAX_PRIME = 10_000
MAX_PRIMES = 32
MAX_BODY = 4 << 20          # bytes: 32 primes of 10,000 characters, escaped, fit
SEED_HIGH = int(SEED.high) - 1023      # room for seed + row (at most 1,024 rows a request)



def _whole(value: Any) -> Any:
    """JSON Schema's integer: 3 or 3.0, never true, "3" or 3.5."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("int_type", "not a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise PydanticCustomError("int_from_float", "not a whole number")
        return int(value)
    return value


Whole = Annotated[int, BeforeValidator(_whole)]
Number = Annotated[float, Field(allow_inf_nan=False)] | int
Text = Annotated[str, Field(max_length=MAX_PRIME)]


class Invalid(CharforgeError):
    """A request the server refuses: HTTP `status` with one line."""

    def __init__(self, message: str, status: int = 422, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.field = status, field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    model: str | None = Field(None, description="a served model's name (GET /v1/models); "
                                                 "default the first")


class _Sampling(_Body):
    sampler: str = Field("temperature", description="a sampler (GET /v1/models lists them)")
    params: dict[str, Number] = Field(default_factory=dict, description=(
        "the sampler's parameters, e.g. {\"temperature\": 0.8}; checked against their "
        "ranges"))


class GenerateBody(_Sampling):
    prime: Text = ""
    primes: Annotated[list[Text], Field(min_length=1, max_length=MAX_PRIMES)] | None = None
    length: Whole = Field(200, description="characters to add after each prime",
                        json_schema_extra={"minimum": 0})      # the maximum is the server's
    seed: Annotated[Whole, Field(ge=0, le=SEED_HIGH)] | None = Field(
        None, description="the same seed gives the same text, alone or batched; row i uses "
                          "seed + i")
    stream: bool = Field(False, description="server-sent events: start, then {row, text} "
                                            "pieces, then done")


class NextBody(_Sampling):
    text: Text = ""
    top: Whole = Field(10, ge=1, le=100)


class ActivationsBody(_Body):
    text: Text = ""
    state: str = Field("h", description="h, c, gate or a gate's name")
    layer: Annotated[Whole, Field(ge=0)] | None = None
    unit: Whole = Field(0, ge=0)


class CompletionBody(BaseModel):
    """OpenAI's /v1/completions request, the fields a character model can honour."""
    model_config = ConfigDict(extra="forbid", strict=True)
    model: str | None = None
    prompt: Text | Annotated[list[Text], Field(min_length=1, max_length=MAX_PRIMES)] = ""
    max_tokens: Annotated[Whole, Field(ge=0)] | None = 16
    temperature: Annotated[Number, Field(ge=0, le=2)] | None = 1.0
    top_p: Annotated[Number, Field(gt=0, le=1)] | None = 1.0
    n: Annotated[Whole, Field(ge=1, le=MAX_PRIMES)] | None = 1
    seed: Annotated[Whole, Field(ge=0, le=SEED_HIGH)] | None = None
    stop: Annotated[str, Field(min_length=1, max_length=64)] | Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]],
        Field(max_length=4)] | None = None
    stream: bool | None = False
    user: str | None = None


_WHAT = {"string_type": "text", "bool_type": "true or false", "int_type": "a whole number",
         "float_type": "a number", "finite_number": "a finite number", "list_type": "a list",
         "dict_type": "an object", "literal_error": "false", "none_required": "left out",
         "int_from_float": "a whole number"}


def parse(kind: type[BaseModel], raw: bytes) -> Any:
    """The body as `kind`, or Invalid with one line naming the first mistake."""
    try:
        return kind.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise Invalid(_explain(kind, _most_telling(exc.errors()))) from None


def _most_telling(errors: list[dict]) -> dict:
    """Of a field's errors, the one that says most: a union's branch of the wrong type says
    little ('must be text' for a list), the branch that matched the type and went deeper
    says what is wrong with it."""
    field = errors[0]["loc"][:1]
    same = [e for e in errors if e["loc"][:1] == field]

    def wrong_branch(e: dict) -> bool:
        return e["type"].endswith("_type") and len(e["loc"]) > 1 and _is_type_name(e["loc"][-1])
    return min(same, key=lambda e: (wrong_branch(e), -len(e["loc"])))


def _explain(kind: type[BaseModel], error: dict) -> str:
    kind_of = error["type"]
    where = ".".join(str(p) for p in error["loc"] if not _is_type_name(p))
    given = error.get("input")
    if kind_of == "json_invalid":
        return f"the request body must be a JSON object ({error['ctx']['error']})"
    if kind_of == "model_type":
        return "the request body must be a JSON object"
    if kind_of == "extra_forbidden":
        fields = ", ".join(kind.model_fields)
        return f"unknown field {where!r}; this endpoint takes: {fields}"
    if kind_of == "string_too_long":
        return f"{where} may have at most {error['ctx']['max_length']:,} characters"
    if kind_of == "string_too_short":
        return f"{where} must have at least {error['ctx']['min_length']} character(s)"
    if kind_of == "too_short":
        return f"{where} must be a list of at least {error['ctx']['min_length']} item(s)"
    if kind_of == "too_long":
        return f"{where} must be a list of at most {error['ctx']['max_length']} items"
    if kind_of in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        field = kind.model_fields.get(where.split(".")[0])
        return f"{where} must be {_range_of(field, given).describe()}, got {given!r}"
    what = _WHAT.get(kind_of, error["msg"].lower())
    return f"{where} must be {what}, got {_shown(given)}"


def _is_type_name(part) -> bool:
    """pydantic names the member of a union it tried ('str', 'list[...]'); the user's field
    path does not include those."""
    return isinstance(part, str) and (part in ("str", "int", "float", "bool") or "[" in part
                                      or part.startswith("constrained"))


def _limit(field, name: str):
    if field is None:
        return None
    for m in field.metadata:
        if hasattr(m, name):
            return getattr(m, name)
    return None


def _range_of(field, given) -> Range:
    """The CLI's wording of a field's bounds ('a whole number from 0 to 100')."""
    bounds = _bounds(field.annotation) if field is not None else {}
    bounds.update({type(m).__name__.lower(): v for m in (field.metadata if field else [])
                   for v in [getattr(m, type(m).__name__.lower(), None)] if v is not None})
    low, high = bounds.get("gt", bounds.get("ge")), bounds.get("lt", bounds.get("le"))
    return Range(low, high, "gt" in bounds, "lt" in bounds,
                 whole="float" not in str(field.annotation if field else ""))


def _bounds(annotation) -> dict[str, Any]:
    """ge/le/gt/lt wherever they sit in an annotation (Annotated inside a union)."""
    import typing
    out: dict[str, Any] = {}
    for meta in getattr(annotation, "__metadata__", ()):
        for m in getattr(meta, "metadata", [meta]):
            name = type(m).__name__.lower()
            if name in ("ge", "le", "gt", "lt"):
                out[name] = getattr(m, name)
    for arg in typing.get_args(annotation):
        if arg is not annotation:
            out.update(_bounds(arg))
    return out


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


JSON_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum",
               "lt": "exclusiveMaximum"}


def schema(kind: type[BaseModel]) -> dict:
    """The JSON schema of a body, for /openapi.json (bounds that pydantic leaves under their
    Python names, inside unions, given their JSON Schema names)."""
    def fix(node):
        if isinstance(node, dict):
            return {JSON_BOUNDS.get(k, k): fix(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node
    return fix(kind.model_json_schema(ref_template="#/components/schemas/{model}"))
