"""make bench's flags: defaults and validation (exit 2 naming the flag)."""

from __future__ import annotations

import pytest

from tools.bench.cli import parse_args


def test_defaults_are_the_issue_levels():
    args = parse_args([])
    assert args.concurrency == [1, 8, 32]
    assert args.design == "gateway-throughput"
    assert args.pause_idle is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--concurrency", "1,x"], "argument --concurrency: '1,x' is not a comma-separated"),
        (["--concurrency", "8,0"], "argument --concurrency: '8,0': every concurrency"),
        (["--duration", "-3"], "argument --duration: '-3' must be greater than 0"),
        (["--rounds", "two"], "argument --rounds: 'two' is not a number"),
        (["--max-tokens", "0"], "argument --max-tokens: '0' must be greater than 0"),
        (["--design", "fastest"], "argument --design: invalid choice: 'fastest'"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
