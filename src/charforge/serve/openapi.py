"""The OpenAPI description of charforge's HTTP API (served at /openapi.json), generated from
the request models the server checks bodies with (serve.requests), with what only the running
server knows filled in: its models, samplers, length limit and each model's characters."""
from __future__ import annotations

import re
from typing import Any

from ..generation.samplers import get_sampler, sampler_names
from .requests import ActivationsBody, CompletionBody, GenerateBody, NextBody, schema


def _json(description: str, ref: str | None = None, body: dict | None = None) -> dict:
    content = {"schema": {"$ref": f"#/components/schemas/{ref}"} if ref else body or {}}
    return {"description": description, "content": {"application/json": content}}


def _request(name: str) -> dict:
    """A body every field of which has a default: none at all is {}."""
    return {"required": False, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{name}"}}}}


def _fill(body: dict, models: list[str], chars: str | None, texts: tuple[str, ...]) -> dict:
    """The server's own facts in a body's schema: the model names, the sampler names, and
    (one model) the characters a text may hold."""
    props = body["properties"]
    if "model" in props:
        props["model"] = {"anyOf": [{"type": "string", "enum": models}, {"type": "null"}],
                          "default": None, "description": props["model"]["anyOf"][0].get(
                              "description", "a served model's name")}
    if "sampler" in props:
        props["sampler"]["enum"] = sampler_names()
    if chars is not None:
        pattern = "^[" + "".join(re.escape(c) if c not in "\n\r\t" else
                                 {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[c]
                                 for c in chars) + "]*$"
        for name in texts:
            _with_pattern(props.get(name), pattern)
    return body


def _param(p) -> dict:
    out: dict[str, Any] = {"type": "integer" if p.kind is int else "number"}
    if p.low is not None:
        out["exclusiveMinimum" if p.low_open else "minimum"] = p.low
    if p.high is not None:
        out["exclusiveMaximum" if p.high_open else "maximum"] = p.high
    return out


def _with_samplers(body: dict) -> dict:
    """Each sampler's own parameters (names, kinds, ranges): one branch per sampler, the
    temperature sampler's also when none is named."""
    branches = []
    for name in sampler_names():
        params = {"type": "object", "additionalProperties": False,
                  "properties": {k: _param(p) for k, p in get_sampler(name).params.items()}}
        branch: dict[str, Any] = {"properties": {"sampler": {"const": name},
                                                 "params": params}}
        if name != "temperature":
            branch["required"] = ["sampler"]
        branches.append(branch)
    body["anyOf"] = branches
    return body


def _units(body: dict, served_models: list) -> dict:
    """The states, layers and units every served model has."""
    from ..viz.activations import default_gate, states_of
    props = body["properties"]
    cells = [getattr(m.cell, "name", str(m.cell)) for m in served_models]
    states = set.intersection(*(set(states_of(c)) for c in cells))
    if all(default_gate(c) is not None for c in cells):
        states.add("gate")
    props["state"]["enum"] = sorted(states)
    props["layer"]["anyOf"][0]["maximum"] = min(m.config.layers for m in served_models) - 1
    props["unit"]["maximum"] = min(m.config.hidden for m in served_models) - 1
    return body


def _with_pattern(prop: dict | None, pattern: str) -> None:
    if prop is None:
        return
    if prop.get("type") == "string":
        prop["pattern"] = pattern
    for key in ("anyOf", "items"):
        sub = prop.get(key)
        for part in sub if isinstance(sub, list) else [sub] if sub else []:
            _with_pattern(part, pattern)


def openapi(models: list[str], limits, chars: str | None = None,
            served_models: list | None = None) -> dict[str, Any]:
    """chars: the characters every served model knows (primes and texts may hold only
    those), or None; served_models: the models, for their states, layers and units."""
    from .._version import __version__
    error = _json("the request is invalid: the message says what to change", "Error")
    busy = _json("too much work in flight; retry after the Retry-After seconds", "Error")
    refused = {"401": _json("a token is needed", "Error"),
               "403": _json("a foreign Host or web page", "Error"),
               "408": _json("the body did not arrive in time", "Error"),
               "413": _json("the body is too large", "Error"),
               "422": error, "503": busy}
    generate = _with_samplers(_fill(schema(GenerateBody), models, chars, ("prime", "primes")))
    generate["properties"]["length"]["maximum"] = limits.max_length
    generate["not"] = {"required": ["prime", "primes"]}
    activations = _fill(schema(ActivationsBody), models, chars, ("text",))
    if served_models:
        activations = _units(activations, served_models)
    completion = _fill(schema(CompletionBody), models, chars, ("prompt",))
    completion["properties"]["max_tokens"]["anyOf"][0]["maximum"] = limits.max_length
    completion["anyOf"] = [                     # n > 1 only with one prompt
        {"properties": {"prompt": {"type": "string"}}},
        {"properties": {"prompt": {"type": "array", "maxItems": 1}}},
        {"properties": {"n": {"anyOf": [{"const": 1}, {"type": "null"}]}}}]
    samplers = {n: sorted(get_sampler(n).params) for n in sampler_names()}
    return {
        "openapi": "3.1.0",
        "info": {"title": "charforge", "version": __version__,
                 "description": "Character-level language models: generation (batched "
                                "across requests), next-character distributions, unit "
                                "activations, and OpenAI's completions. Samplers and their "
                                f"parameters: {samplers}."},
        "paths": {
            "/v1/models": {"get": {"summary": "the served models and the samplers",
                                   "responses": {"200": _json("models, samplers"),
                                                 "401": refused["401"],
                                                 "403": refused["403"]}}},
            "/v1/generate": {"post": {
                "summary": "generate text after one or several primes",
                "requestBody": _request("GenerateBody"),
                "responses": {"200": {"description": "{texts, seeds, ...} or an event "
                                                     "stream",
                                      "content": {"application/json": {"schema": {}},
                                                  "text/event-stream": {"schema": {}}}},
                              "504": _json("the request ran past the time limit", "Error"),
                              **refused}}},
            "/v1/next": {"post": {
                "summary": "the next-character distribution after a text, as the sampler "
                           "draws it",
                "requestBody": _request("NextBody"),
                "responses": {"200": _json("{next: [{char, p}]}"), **refused}}},
            "/v1/activations": {"post": {
                "summary": "one unit's value after each character of a text",
                "requestBody": _request("ActivationsBody"),
                "responses": {"200": _json("{values, scale, signed}"), **refused}}},
            "/v1/completions": {"post": {
                "summary": "OpenAI's completions (the openai client works with base_url)",
                "requestBody": _request("CompletionBody"),
                "responses": {"200": {"description": "a text_completion, or its chunks",
                                      "content": {"application/json": {"schema": {}},
                                                  "text/event-stream": {"schema": {}}}},
                              **{k: _json(v["description"], "OpenAIError")
                                 for k, v in refused.items() if k != "422"},
                              "400": _json("the request is invalid", "OpenAIError"),
                              "504": _json("the request ran past the time limit",
                                           "OpenAIError")}}},
            "/healthz": {"get": {"summary": "liveness: 503 when a batching engine stopped",
                                 "responses": {"200": _json("ok"), "503": _json("stopped"),
                                               "403": refused["403"]}}},
        },
        "components": {
            "schemas": {
                "GenerateBody": generate,
                "NextBody": _with_samplers(_fill(schema(NextBody), models, chars, ("text",))),
                "ActivationsBody": activations,
                "CompletionBody": completion,
                "Error": {"type": "object", "required": ["error"],
                          "properties": {"error": {"type": "string"}}},
                "OpenAIError": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "object", "required": ["message", "type"]}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
