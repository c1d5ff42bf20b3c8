"""Talking to the Hub: the endpoint, repo ids, and retries with backoff for transient errors."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

#: Attempts and first delay (seconds, doubling) for transient Hub errors.
RETRY_ATTEMPTS = 4
RETRY_DELAY = 1.0
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}

_T = TypeVar("_T")
Echo = Callable[[str], None]


class HubError(RuntimeError):
    """A Hub operation failed in a way the user can act on (the message says how)."""


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT  # HF_ENDPOINT, read by the client at import



def check_repo_id(repo_id: str) -> None:
    if not re.fullmatch(r"[\w.\-]+/[\w.\-]+", repo_id or ""):
        raise HubError(f"repo id {repo_id!r} must look like 'user/name' (e.g. alice/ppo-CartPole-v1)")


def with_retries(call: Callable[[], _T], what: str, echo: Echo, passthrough: tuple[type, ...] = ()) -> _T:
    """``call()``, retried with exponential backoff on transient errors; other errors become HubError
    (``passthrough`` errors are raised as they are)."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    delay = RETRY_DELAY
    for attempt in range(1, RETRY_ATTEMPTS + 1):
        try:
            return call()
        except passthrough:
            raise
        except RepositoryNotFoundError as error:
            raise HubError(f"{what} failed: repository not found or not yours ({first_line(error)}). Check the "
                           "repo id and that your token may write to its namespace.") from None
        except HfHubHTTPError as error:
            status = error.response.status_code if error.response is not None else None
            if status in (401, 403):
                raise HubError(f"{what} failed: the Hub refused the token ({status}: {first_line(error)}). Use a "
                               "token with write access (HF_TOKEN or `hf auth login`).") from None
            if status not in _TRANSIENT_STATUS:
                raise HubError(f"{what} failed: {first_line(error)}") from None
            failure = f"server error {status}"
        except (httpx2.TransportError, OSError) as error:
            failure = f"{type(error).__name__}: {first_line(error)}; check your connection and HF_ENDPOINT"
        if attempt == RETRY_ATTEMPTS:
            raise HubError(f"{what} failed after {attempt} attempts on {endpoint()} (last: {failure}).")
        echo(f"{what}: {failure}; retrying in {delay:g} s (attempt {attempt + 1} of {RETRY_ATTEMPTS})")
        time.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")


def first_line(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
