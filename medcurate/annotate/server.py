"""The Label Studio connection: every API call goes through ``LabelStudioServer.call``, which
retries an unreachable server or a 5xx answer with exponential backoff and then stops with
one clear line. The token is held only by the SDK client and never appears in a message.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medcurate.errors import MedcurateError

URL_ENV = "MEDCURATE_LABEL_STUDIO_URL"
TOKEN_ENV = "MEDCURATE_LABEL_STUDIO_TOKEN"
FALLBACK_URL_ENV = "LABEL_STUDIO_URL"
FALLBACK_TOKEN_ENV = "LABEL_STUDIO_API_KEY"


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all, waiting ``base_delay * 2**n`` seconds (capped) between them."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delays(self):
        for attempt in range(self.attempts - 1):
            yield min(self.base_delay * (2 ** attempt), self.max_delay)


def retry_policy_from_env() -> RetryPolicy:
    """Tests shorten the waits with MEDCURATE_LS_RETRY_DELAY; the number of tries with MEDCURATE_LS_RETRIES."""
    return RetryPolicy(attempts=int(os.environ.get("MEDCURATE_LS_RETRIES", 5)),
                       base_delay=float(os.environ.get("MEDCURATE_LS_RETRY_DELAY", 0.5)))


def connection_settings(url: str | None, token: str | None) -> tuple[str, str]:
    """Server URL and token from the flags, else the environment; a clear error when absent."""
    url = url or os.environ.get(URL_ENV) or os.environ.get(FALLBACK_URL_ENV)
    token = token or os.environ.get(TOKEN_ENV) or os.environ.get(FALLBACK_TOKEN_ENV)
    if not url:
        raise MedcurateError(f"no Label Studio URL: pass --url or set {URL_ENV}", field="url")
    if not token:
        raise MedcurateError(f"no Label Studio token: pass --token or set {TOKEN_ENV}", field="token")
    return url.rstrip("/"), token


class LabelStudioServer:
    """A Label Studio SDK client whose calls retry transient failures."""

    def __init__(self, url: str, token: str, retry: RetryPolicy | None = None, timeout: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep):
        from label_studio_sdk import LabelStudio

        self.url = url.rstrip("/")
        self.retry = retry or retry_policy_from_env()
        self.timeout = timeout
        self._sleep = sleep
        self.sdk = LabelStudio(base_url=self.url, api_key=token, timeout=timeout)

    def call(self, what: str, function: Callable[..., Any], *args, **kwargs) -> Any:
        """Run one SDK call; retry connection failures and 5xx, fail with one line otherwise."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        kwargs.setdefault("request_options", {"max_retries": 0, "timeout_in_seconds": int(self.timeout)})
        delays = self.retry.delays()
        while True:
            try:
                return function(*args, **kwargs)
            except httpx.TransportError as exc:
                problem = f"unreachable ({type(exc).__name__})"
            except ApiError as exc:
                status = exc.status_code or 0
                if status < 500:
                    raise MedcurateError(f"Label Studio at {self.url} refused {what}: HTTP {status}"
                                         f"{_detail(exc.body)}") from None
                problem = f"answered HTTP {status}"
            delay = next(delays, None)
            if delay is None:
                raise MedcurateError(f"Label Studio at {self.url} {problem} on {what}; gave up after "
                                     f"{self.retry.attempts} tries") from None
            self._sleep(delay)

    def users_by_id(self) -> dict[int, str]:
        return {user.id: (user.email or user.username or str(user.id))
                for user in self.call("list users", self.sdk.users.list)}

    def accounts(self, emails: list[str]) -> dict[str, int | None]:
        """The user id of each e-mail, None for people without an account yet.

        medcurate does not create accounts: one made through the API has no password and
        would block the person from signing up with the organisation's invite link."""
        known = {email.lower(): user_id for user_id, email in self.users_by_id().items()}
        return {email: known.get(email.lower()) for email in emails}

    def project_config(self, project_id: int) -> str:
        return self.call(f"read project {project_id}", self.sdk.projects.get, id=project_id).label_config

    def task_pages(self, project_id: int, page_size: int = 100):
        """Tasks with their annotations, one page at a time (each page its own retried call)."""
        page = 1
        while True:
            pager = self.call(f"list tasks of project {project_id} (page {page})", self.sdk.tasks.list,
                              project=project_id, fields="all", page=page, page_size=page_size)
            items = list(pager.items or [])
            yield items
            total = getattr(pager.response, "total", None) or 0
            if not items or page * page_size >= total:
                return
            page += 1


def _detail(body: Any) -> str:
    """The server's short reason for a 4xx (never our request, never the token)."""
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("validation_errors")
        if detail:
            return f" ({str(detail)[:200]})"
    return ""
