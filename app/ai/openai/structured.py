"""JSON answers: the `response_format` that asks for an output model's schema, and the check of
an answer against that model."""

from __future__ import annotations

import re
from functools import cache
from typing import Any, TypeVar, cast

from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import BaseModel, ValidationError

from app.ai.openai.prompts import Prompt

Out = TypeVar("Out", bound=BaseModel)

# Keywords that OpenAI's strict structured outputs refuse (a 400 for the whole request). The
# limits they carry are still enforced: by the pydantic model, with one repair retry.
_UNSUPPORTED = frozenset({"minLength", "maxLength", "title", "default"})
_NAMED_SCHEMAS = frozenset({"properties", "$defs"})
# Shown to the model in a repair request: enough to fix the answer, short enough to send.
MAX_ERRORS_SHOWN = 10
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class InvalidAnswer(Exception):
    """The answer is not JSON, or does not fit the output model; says why, in a line or two."""


def response_format(prompt: Prompt[Any]) -> ResponseFormatJSONSchema:
    return {
        "type": "json_schema",
        "json_schema": {
            "name": prompt.name,
            "schema": strict_schema(cast(type[BaseModel], prompt.output)),
            "strict": True,
        },
    }


@cache
def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the subset strict mode accepts: every property required, no
    other properties, no string length limits."""
    cleaned: dict[str, Any] = _clean(model.model_json_schema())
    return cleaned


def _clean(node: Any) -> Any:
    if isinstance(node, list):
        return [_clean(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _NAMED_SCHEMAS:
            # Keys here are names (a property may be called "title"), not schema keywords.
            out[key] = {name: _clean(schema) for name, schema in value.items()}
        elif key not in _UNSUPPORTED:
            out[key] = _clean(value)
    if "properties" in out:
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    return out


def parse(model: type[Out], content: str | None, context: dict[str, Any] | None = None) -> Out:
    """The answer as the output model (validated with `context`, where the model checks the
    answer against its input), or `InvalidAnswer` saying what is wrong with it."""
    if not content or not content.strip():
        raise InvalidAnswer("the answer was empty")
    fenced = _FENCE.match(content)
    try:
        return model.model_validate_json(fenced.group(1) if fenced else content, context=context)
    except ValidationError as exc:
        raise InvalidAnswer(describe(exc)) from exc


def describe(error: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in e['loc']) or 'the answer'}: {e['msg']}"
        for e in error.errors(include_url=False, include_input=False)
    ]
    shown = "; ".join(problems[:MAX_ERRORS_SHOWN])
    more = len(problems) - MAX_ERRORS_SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")
