from datetime import datetime, timedelta

from conveyor.core.lifecycle import RetryPolicy, decide_after_failure

NOW = datetime(2026, 1, 1)


def test_permanent_errors_never_retry() -> None:
    decision = decide_after_failure(RetryPolicy(max_attempts=9), 1, True, NOW)
    assert decision.retry_at is None and "permanent" in decision.reason


def test_transient_errors_retry_with_backoff_until_the_budget_is_spent() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_seconds=2)
    assert decide_after_failure(policy, 1, False, NOW).retry_at == NOW + timedelta(seconds=2)
    assert decide_after_failure(policy, 2, False, NOW).retry_at == NOW + timedelta(seconds=4)
    final = decide_after_failure(policy, 3, False, NOW)
    assert final.retry_at is None and "after 3 attempts" in final.reason


def test_retry_policy_backs_off_exponentially_up_to_a_cap() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_seconds=1, backoff_factor=2, max_backoff_seconds=5)
    assert [policy.delay_before(a) for a in (2, 3, 4, 5)] == [1, 2, 4, 5]
    assert policy.allows_another(4) and not policy.allows_another(5)
