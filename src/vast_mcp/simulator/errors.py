"""The error answer a simulated endpoint gives (status + JSON body)."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Raised by state and endpoint code; the HTTP layer answers ``status`` with ``body``."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body.get('msg') or body.get('error')}")
        self.status = status
        self.body = body


def invalid_args(msg: str, status: int = 400) -> ApiError:
    return ApiError(status, {"success": False, "error": "invalid_args", "msg": msg})


def invalid_request(msg: str, status: int = 400) -> ApiError:
    # The search and list endpoints answer without a "success" key.
    return ApiError(status, {"error": "invalid_request", "msg": msg})


def no_such_instance(instance_id: int) -> ApiError:
    return ApiError(
        404,
        {"success": False, "error": "no_such_instance", "msg": f"Instance {instance_id} not found."},
    )
