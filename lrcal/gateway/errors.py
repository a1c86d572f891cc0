"""OpenAI-style errors: ``{"error": {"message", "type", "param", "code"}}`` with an HTTP status,
one line, never a traceback."""

from __future__ import annotations

from typing import Mapping

from starlette.responses import JSONResponse

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error"}  # fmt: skip


class ApiError(Exception):
    """A request the gateway answers with an error status."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 headers: Mapping[str, str] | None = None, error_kind: str | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.message = " ".join(str(message).split())
        self.code = code
        self.param = param
        self.headers = dict(headers or {})
        self.error_kind = error_kind or ("bad_request" if status < 500 else "unavailable")

    def body(self) -> dict:
        kind = _TYPES.get(self.status, "invalid_request_error" if self.status < 500 else "server_error")
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}

    def response(self, extra_headers: Mapping[str, str] | None = None) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers={**self.headers, **(extra_headers or {})})


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)
