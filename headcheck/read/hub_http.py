"""The HTTP client huggingface_hub itself uses: requests under 0.x, httpx under 1.x, httpx2 under 2.x.

Used for the one thing huggingface_hub's public API does not do, a Range read of a chosen size (its
safetensors helper always asks for 100,000 bytes, HfFileSystem for whole blocks of megabytes), and to tell
that client's timeouts and connection failures apart. Nothing here imports a client of its own.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from huggingface_hub import get_session

# client module -> its exceptions for (any failed request, a timeout, a failed connection). httpx's
# `Timeout` is a settings class, not an exception, so the names are per client.
_ERRORS = {
    "requests": ("RequestException", "Timeout", "ConnectionError"),
    "httpx": ("TransportError", "TimeoutException", "NetworkError"),
    "httpx2": ("TransportError", "TimeoutException", "NetworkError"),
}


def client_module() -> ModuleType:
    return importlib.import_module(type(get_session()).__module__.partition(".")[0])


def _errors(which: int) -> tuple[type[BaseException], ...]:
    module = client_module()
    names = _ERRORS.get(module.__name__)
    return (getattr(module, names[which]),) if names else ()


def ranged_get(url: str, headers: dict[str, str], timeout: float):
    """GET with the Hub's own session. Redirects are followed (requests does for GET; huggingface_hub 1.x
    and 2.x configure their client so), which Xet-backed files need: the Range is answered after one."""
    return get_session().get(url, headers=headers, timeout=timeout)


def transport_errors() -> tuple[type[BaseException], ...]:
    """The client's exception for a request that got no answer (to catch beside huggingface_hub's own)."""
    return _errors(0)


def failure_kind(exc: BaseException) -> str | None:
    """'timeout' or 'connect' for the client's transport errors, None for anything else."""
    if isinstance(exc, _errors(1)):
        return "timeout"
    if isinstance(exc, _errors(2)):
        return "connect"
    return None
