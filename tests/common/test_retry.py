from linksyn.common.config import RetryConfig
from linksyn.common.retry import backoff_delay


def test_backoff_doubles_from_the_initial_delay_up_to_the_cap() -> None:
    policy = RetryConfig(backoff_initial_s=0.2, backoff_max_s=1.0)
    assert [backoff_delay(n, policy) for n in range(0, 6)] == [0.0, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff_delay(10_000, RetryConfig(backoff_initial_s=0.2, backoff_max_s=10.0)) == 10.0  # no overflow


def test_backoff_with_jitter_spreads_around_the_schedule_and_honours_retry_after():
    policy = RetryConfig(backoff_initial_s=1.0, backoff_max_s=8.0)
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 8.0)]:
        d = [backoff_delay(attempt, policy, jitter=True) for _ in range(50)]
        assert all(0.5 * base <= x <= 1.5 * base for x in d) and len(set(d)) > 1
    assert backoff_delay(1, policy, retry_after="3") == 3.0
    assert backoff_delay(1, policy, retry_after="100") == 8.0  # capped
    assert 0.5 <= backoff_delay(1, policy, retry_after="Wed, 21 Oct 2015 07:28:00 GMT") <= 1.5  # a date: own schedule
