"""Errors of the HTTP API: bad input is answered 4xx with ``{"error": "<one line>", "field": "<field at fault>"}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from unisr.errors import UnisrError
from unisr.serve.models import ErrorBody

MAX_BODY_BYTES = 64 * 1024  # a request body larger than this is refused (413)
BODY_METHODS = {"POST", "PUT", "PATCH"}
VALUE_ERROR_PREFIX = "Value error, "  # pydantic's prefix of a validator's own message


class ApiError(Exception):
    """Bad input found by the server: answered with ``status`` and ``{"error": message, "field": field}``."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def error_response(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse(ErrorBody(error=" ".join(message.split()), field=field).model_dump(), status_code=status)


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 before the app reads any of it."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        too_large = declared is not None and declared.isdigit() and int(declared) > self.limit
        messages, size = [], 0
        while not too_large:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            too_large = size > self.limit
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        if too_large:
            message = f"request body over {self.limit:,} bytes: send a smaller request"
            return await error_response(413, message, "body")(scope, receive, send)

        async def replay():
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)


def validation_message(error: RequestValidationError) -> tuple[str, str]:
    """(one-line message, field) of the first problem of a request that does not fit its model."""
    problems = error.errors()
    first = problems[0] if problems else {"loc": ("body",), "msg": "invalid request", "type": ""}
    location = [str(part) for part in first.get("loc", ("body",))]
    if first.get("type") == "json_invalid":
        reason = first.get("ctx", {}).get("error", "not valid JSON")
        return f"malformed JSON body ({reason}): send a JSON object", "body"
    field = ".".join(location[1:]) or location[0]
    message = f"{field}: {str(first.get('msg', 'invalid value')).removeprefix(VALUE_ERROR_PREFIX)}"
    if first.get("type") == "extra_forbidden":
        message += " (unknown field: check its spelling in /docs)"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    return message, field


def install_error_handlers(app: FastAPI, body_limit: int = MAX_BODY_BYTES) -> None:
    """Every error becomes one JSON line: bad input 4xx naming its field, a bug 500 without a traceback."""
    app.add_middleware(BodyLimit, limit=body_limit)

    @app.exception_handler(ApiError)
    async def apierror_response(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.message, error.field)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, *validation_message(error))

    @app.exception_handler(HTTPException)
    async def httperror_response(_: Request, error: HTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail))

    @app.exception_handler(UnisrError)
    async def unisrerror_response(_: Request, error: UnisrError) -> JSONResponse:
        return error_response(400, str(error))

    @app.exception_handler(Exception)
    async def internalerror_response(_: Request, error: Exception) -> JSONResponse:
        return error_response(500, f"internal error ({type(error).__name__}): see the server log")
