"""A gateway request we refuse (`WireError`), shared by both wire formats; each encodes it in
its vendor's error shape."""

from __future__ import annotations


class WireError(Exception):
    """A request we refuse, with the OpenAI error fields."""

    def __init__(self, status: int, message: str, *, kind: str, code: str | None, param=None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = (
            status,
            message,
            kind,
            code,
            param,
        )


def invalid(message: str, param: str | None = None, code: str = "invalid_value") -> WireError:
    return WireError(400, message, kind="invalid_request_error", code=code, param=param)


def unsupported(param: str, why: str = "") -> WireError:
    return invalid(
        f"`{param}` is not supported by the Workbench gateway{why}.", param, "unsupported_parameter"
    )
