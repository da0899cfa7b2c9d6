"""Transport-neutral request and response values shared by the HTTP layer and the endpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON = "application/json"  # exactly this: the CLI rejects "application/json; charset=..." on search


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, str]  # last value per name, URL-decoded (JSON values stay JSON text)
    body: Any  # parsed JSON, the raw text when it is not JSON, None when empty
    headers: dict[str, str]  # lower-case names
    base_url: str  # how this simulator is reached, e.g. "http://127.0.0.1:8123"
    body_is_json: bool = True


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = JSON
    headers: dict[str, str] = field(default_factory=dict)
    #: Close the connection without sending anything (the request may have taken effect).
    drop: bool = False
    #: Real seconds to wait before answering (the ``slow`` fault).
    delay: float = 0.0


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(payload).encode(), JSON, dict(headers or {}))


def text_response(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(status, text.encode(), content_type)
