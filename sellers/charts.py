"""The dashboard's 60-day trend as SVG geometry, drawn by a template (no JS library): one
polyline per rate, broken where a day had nothing decided yet."""

from dataclasses import dataclass

WIDTH, HEIGHT = 600, 200
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 8, 24  # room for the axis labels


@dataclass(frozen=True)
class Series:
    name: str
    css_class: str
    segments: list[str]  # each an SVG "points" attribute: "x,y x,y …"
    markers: list[tuple[float, float]]  # dots: today's value, and days alone between gaps
    last: int | None


@dataclass(frozen=True)
class TrendChart:
    width: int
    height: int
    series: list[Series]
    gridlines: list[tuple[int, float]]  # (percent, y)
    first_day: object
    last_day: object
    left: int
    right: float
    bottom: float


def _x(index: int, count: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (span * index / (count - 1) if count > 1 else span)


def _y(rate: int) -> float:
    return TOP + (100 - rate) * (HEIGHT - TOP - BOTTOM) / 100


def _segments(rates: list[int | None]) -> list[str]:
    segments, current = [], []
    for index, rate in enumerate(rates):
        if rate is None:
            if current:
                segments.append(" ".join(current))
            current = []
            continue
        current.append(f"{_x(index, len(rates)):.1f},{_y(rate):.1f}")
    if current:
        segments.append(" ".join(current))
    return segments


def _markers(rates: list[int | None]) -> list[tuple[float, float]]:
    count = len(rates)
    markers = []
    for index, rate in enumerate(rates):
        if rate is None:
            continue
        alone = (index == 0 or rates[index - 1] is None) and (index == count - 1 or rates[index + 1] is None)
        if alone or index == count - 1:
            markers.append((round(_x(index, count), 1), round(_y(rate), 1)))
    return markers


def trend_chart(points) -> TrendChart:
    """`points`: inbox.selectors.TrendPoint, oldest first."""
    series = []
    for name, css_class, rates in (
        ("Inbox response rate", "trend-inbox", [p.inbox_rate for p in points]),
        ("Order response rate", "trend-order", [p.order_rate for p in points]),
    ):
        last = rates[-1] if rates else None
        series.append(Series(name, css_class, _segments(rates), _markers(rates), last))
    return TrendChart(
        width=WIDTH,
        height=HEIGHT,
        series=series,
        gridlines=[(percent, _y(percent)) for percent in (0, 50, 100)],
        first_day=points[0].day if points else None,
        last_day=points[-1].day if points else None,
        left=LEFT,
        right=WIDTH - RIGHT,
        bottom=HEIGHT - BOTTOM,
    )
