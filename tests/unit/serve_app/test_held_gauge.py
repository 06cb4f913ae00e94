"""HeldGauge keeps each tag set's last value and sets it again on refresh; a snapshot replaces
what is held (the real Ray export behaviour is checked in tests/e2e/test_held_gauge.py)."""

from __future__ import annotations

from serve_app.held_gauge import HeldGauge, export_interval_s


class RecordingGauge:  # the shape of ray.util.metrics.Gauge's set()
    def __init__(self) -> None:
        self.sets: list[tuple[float, dict[str, str]]] = []

    def set(self, value: float, tags: dict[str, str]) -> None:
        self.sets.append((value, tags))


def test_values_are_set_again_on_every_refresh_until_replaced() -> None:
    g = RecordingGauge()
    held = HeldGauge(g, start_refresher=False)
    held.set(3, {"key": "a", "window": "day"})
    held.set(5, {"window": "day", "key": "a"})  # same tag set, other order: one series
    held.set(1, {"key": "b", "window": "day"})
    g.sets.clear()
    held.refresh()
    assert sorted(g.sets, key=lambda s: s[1]["key"]) == [
        (5.0, {"key": "a", "window": "day"}), (1.0, {"key": "b", "window": "day"})]
    held.replace([({"key": "b", "window": "day"}, 2)])  # "a" removed from the config
    g.sets.clear()
    held.refresh()
    assert g.sets == [(2.0, {"key": "b", "window": "day"})]
    held.replace([])
    g.sets.clear()
    held.refresh()
    assert g.sets == [] and held.held() == {}


def test_outside_ray_the_export_interval_is_rays_default() -> None:
    assert export_interval_s() == 10.0
