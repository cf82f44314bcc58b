"""The OpenAPI description of charforge's HTTP API (served at /openapi.json)."""
from __future__ import annotations

from typing import Any


def openapi(models: list[str], limits) -> dict[str, Any]:
    from .._version import __version__
    error = {"description": "the request is invalid: the message says what to change",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    busy = {"description": "too many requests running; retry after the Retry-After seconds"}
    sampler = {
        "sampler": {"type": "string", "default": "temperature",
                    "description": "a sampler name (GET /v1/models lists them)"},
        "params": {"type": "object", "description": "the sampler's parameters, e.g. "
                   "{\"temperature\": 0.8}; checked against their ranges"},
    }
    model = {"model": {"type": "string", "enum": models, "default": models[0]}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "charforge", "version": __version__,
                 "description": "Character-level language models: generation (batched "
                                "across requests), next-character distributions, unit "
                                "activations."},
        "paths": {
            "/v1/models": {"get": {"summary": "the served models and the samplers",
                                   "responses": {"200": {"description": "models, samplers"}}}},
            "/v1/generate": {"post": {
                "summary": "generate text after one or several primes",
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "properties": {
                        **model,
                        "prime": {"type": "string", "maxLength": 10_000},
                        "primes": {"type": "array", "items": {"type": "string"},
                                   "maxItems": 32},
                        "length": {"type": "integer", "minimum": 0,
                                   "maximum": limits.max_length, "default": 200},
                        "seed": {"type": "integer", "minimum": 0,
                                 "description": "the same seed gives the same text, alone "
                                                "or batched; row i uses seed + i"},
                        "stream": {"type": "boolean", "default": False,
                                   "description": "server-sent events: start, then "
                                                  "{row, text} pieces, then done"},
                        **sampler}}}}},
                "responses": {"200": {"description": "{texts, seeds, ...} or an event "
                                                     "stream"},
                              "422": error, "503": busy}}},
            "/v1/next": {"post": {
                "summary": "the next-character distribution after a text, as the sampler "
                           "draws it",
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "properties": {
                        **model, "text": {"type": "string"},
                        "top": {"type": "integer", "minimum": 1, "maximum": 100},
                        **sampler}}}}},
                "responses": {"200": {"description": "{next: [{char, p}]}"}, "422": error}}},
            "/v1/activations": {"post": {
                "summary": "one unit's value after each character of a text",
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "properties": {
                        **model, "text": {"type": "string"},
                        "state": {"type": "string", "description": "h, c, gate or a gate"},
                        "layer": {"type": "integer"}, "unit": {"type": "integer"}}}}}},
                "responses": {"200": {"description": "{values, scale, signed}"},
                              "422": error}}},
            "/healthz": {"get": {"summary": "liveness and rows in flight",
                                 "responses": {"200": {"description": "ok"}}}},
        },
        "components": {
            "schemas": {"Error": {"type": "object",
                                  "properties": {"error": {"type": "string"}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
