"""Retries with exponential backoff: one policy (`RetryConfig`, a config section) and one delay schedule, used by the
consumer loop (a failing record) and by the LLM clients (a failing request)."""

from __future__ import annotations

import random

from linksyn.common.config import RetryConfig


def backoff_delay(
    failed_attempts: int, policy: RetryConfig, *, jitter: bool = False, retry_after: str | None = None
) -> float:
    """Seconds to wait before the next attempt after `failed_attempts` failures: backoff_initial_s *
    2^(failed_attempts - 1), capped at backoff_max_s; with `jitter` spread over +-50% so that retries do not arrive
    in step; a server's `retry_after` (seconds) wins, capped likewise."""
    if failed_attempts < 1:
        return 0.0
    if retry_after:
        try:
            return min(max(0.0, float(retry_after)), policy.backoff_max_s)
        except ValueError:
            pass  # an HTTP date: our own schedule
    base = min(policy.backoff_max_s, policy.backoff_initial_s * 2.0 ** min(failed_attempts - 1, 60))
    return base * random.uniform(0.5, 1.5) if jitter else base
