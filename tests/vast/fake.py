"""A scripted Vast for `httpx.MockTransport`: routes answer from a queue, every request is kept."""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def reply(
    status: int = 200, body: Any = None, *, text: str | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    if text is not None:
        return httpx.Response(status, text=text, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


@dataclass
class FakeVast:
    """Register answers with ``on(method, path_regex, *answers)``; the last answer repeats."""

    routes: list[tuple[str, re.Pattern[str], deque[Answer]]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, method: str, path: str, *answers: Answer) -> FakeVast:
        self.routes.append((method, re.compile(path), deque(answers)))
        return self

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for method, pattern, answers in self.routes:
            if request.method == method and pattern.fullmatch(request.url.path):
                answer = answers.popleft() if len(answers) > 1 else answers[0]
                if isinstance(answer, Exception):
                    raise answer
                if callable(answer) and not isinstance(answer, httpx.Response):
                    return answer(request)
                return answer
        return httpx.Response(404, json={"error": "unrouted", "msg": f"no fake route for {request.url.path}"})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def count(self, method: str, path: str) -> int:
        pattern = re.compile(path)
        return sum(1 for r in self.requests if r.method == method and pattern.fullmatch(r.url.path))

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content or b"null")
