"""Progress of long work: the terminal bar, the clock for work of unknown size, the notebook widget."""

from __future__ import annotations

import io
import time
import types

import pytest

from heapseg import progress as progress_module
from heapseg.progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def no_setting(monkeypatch):
    monkeypatch.delenv("HEAPSEG_PROGRESS", raising=False)


def test_a_terminal_gets_a_bar_redrawn_in_place():
    out = Terminal()
    with progress("building", total=4, stream=out) as work:
        for _ in range(4):
            work.advance()
    text = out.getvalue()
    assert text.count("\r") == 4 and text.endswith("\n")
    assert "building [" + "#" * 28 + "] 4/4" in text
    assert "building [" + "#" * 7 + "." * 21 + "] 1/4" in text


def test_no_terminal_no_output():
    out = io.StringIO()  # a pipe or a log file
    with progress("building", total=2, stream=out) as work:
        work.advance(2)
    assert out.getvalue() == "" and work.done == 2


def test_work_of_unknown_size_shows_a_clock_only_once_it_is_slow(monkeypatch):
    monkeypatch.setattr(progress_module, "QUIET_SECONDS", 0.05)
    quick = Terminal()
    with progress("query", stream=quick):
        pass
    assert quick.getvalue() == ""
    slow = Terminal()
    with progress("query", stream=slow):
        time.sleep(0.8)
    assert "query ... " in slow.getvalue() and slow.getvalue().endswith("\n")


def test_the_setting_turns_it_off_or_on(monkeypatch):
    monkeypatch.setenv("HEAPSEG_PROGRESS", "off")
    out = Terminal()
    with progress("x", total=1, stream=out) as work:
        work.advance()
    assert out.getvalue() == ""
    monkeypatch.setenv("HEAPSEG_PROGRESS", "on")
    piped = io.StringIO()
    with progress("x", total=1, stream=piped) as work:
        work.advance()
    assert "x [" in piped.getvalue()


def test_work_inside_other_work_shows_nothing_of_its_own():
    out = Terminal()
    with progress("export", total=1, stream=out) as outer:
        inner_out = Terminal()
        with progress("query", total=3, stream=inner_out) as inner:
            inner.advance(3)
        outer.advance()
    assert inner_out.getvalue() == "" and "export [" in out.getvalue()
    after = Terminal()
    with progress("next", total=1, stream=after) as work:
        work.advance()
    assert "next [" in after.getvalue()


def test_a_notebook_gets_a_widget_that_closes_at_the_end(monkeypatch):
    import IPython
    import IPython.display

    shown = []
    shell = type("ZMQInteractiveShell", (), {})()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    monkeypatch.setattr(IPython.display, "display", lambda w: shown.append(w))
    with progress("refreshing", total=3, stream=io.StringIO()) as work:
        work.advance(2, "two done")
        box = shown[0]
        bar, text = box.children
        assert (bar.value, bar.max) == (2, 3) and "2 of 3 two done" in text.value
    assert bar.comm is None and text.comm is None  # closed
    # Work of unknown size never puts a widget in a notebook (outputs must not depend on timing).
    with progress("query", stream=io.StringIO()):
        pass
    assert len(shown) == 1


def test_outside_a_kernel_no_widget(monkeypatch):
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace())
    assert progress_module._notebook_widget("x", 3) is None


def test_size_over_time_of_many_moments_reports_its_batches(monkeypatch, capsys):
    import warnings

    from heapseg import charts
    from tests.data_helpers import dataset

    monkeypatch.setenv("HEAPSEG_PROGRESS", "on")
    ds = dataset([{"user_id": "a"}], [("a", "2024-03-01 10:00", "View")])
    seg = {"combinator": "and", "rules": [{"kind": "event", "event": "View"}]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = charts.size_over_time(
            ds, {"Viewers": seg}, interval="hour", last=150, as_of="2024-03-05", return_data=True
        )[1]
    assert len(data) == 150
    assert "size over time [" + "#" * 28 + "] 150/150" in capsys.readouterr().err


def test_building_the_sample_shows_its_users_and_nothing_of_duckdb(tmp_path, monkeypatch, capfd):
    from heapseg.sample import generate

    monkeypatch.setenv("HEAPSEG_PROGRESS", "on")
    generate(tmp_path / "s.duckdb", n_users=2_000, chunk_users=1_000)
    err = capfd.readouterr().err
    assert "building the 2,000-user sample [" + "#" * 14 + "." * 14 + "] 1,000/2,000" in err
    assert "2,000/2,000" in err and "▕" not in err  # DuckDB's own bar stays off
