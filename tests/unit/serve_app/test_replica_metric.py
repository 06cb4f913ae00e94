"""Outside a Serve replica there is no replica id to label the series with: nothing is reported
and nothing raises (the e2e tests check the series on a real scrape: test_tenants' cost rules)."""

from __future__ import annotations

from serve_app import replica_metric


def test_outside_a_replica_nothing_is_reported() -> None:
    replica_metric.mark_serving("tiny-chat")
    assert replica_metric._gauge.cache_info().currsize == 0  # the gauge was never created
