"""The heapseg command line: outputs, messages on stderr, and the documented exit codes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heapseg import cli
from heapseg.catalog import Catalog

REPO = Path(__file__).resolve().parents[1]
PAID = {
    "combinator": "and",
    "rules": [{"kind": "user", "field": "subscription_type", "operator": "=", "value": "paid"}],
}
ACTIVE = {
    "combinator": "and",
    "rules": [{"kind": "event", "event": "Session", "window": {"last": 3, "unit": "day"}}],
}


@pytest.fixture
def data_file(tmp_path) -> Path:
    """Six users in a DuckDB file; three are paid, sessions spread over January 2026."""
    return make_data(tmp_path / "shop.duckdb")


def make_data(path: Path) -> Path:
    users = pd.DataFrame(  # noqa: F841 - read by DuckDB's replacement scan below
        {
            "user_id": ["u1", "u2", "u3", "u4", "u5", "u6"],
            "subscription_type": ["trial", "paid", "paid", "free", "trial", "paid"],
            "country": ["FR", "US", "US", "DE", "FR", "US"],
        }
    )
    events = pd.DataFrame(  # noqa: F841
        {
            "user_id": ["u1", "u2", "u3", "u5", "u6"],
            "time": pd.to_datetime(
                [
                    "2026-01-02 12:00",
                    "2026-01-09 12:00",
                    "2026-01-01 12:00",
                    "2026-01-03 12:00",
                    "2026-01-11 12:00",
                ]
            ),
            "event": ["Session"] * 5,
        }
    )
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE users AS SELECT * FROM users")
    con.execute("CREATE TABLE events AS SELECT * FROM events")
    con.close()
    return path


@pytest.fixture
def catalog_file(tmp_path) -> Path:
    path = tmp_path / "team.json"
    cat = Catalog(path, user="alice")
    cat.save(PAID, "Paid users", category="Revenue", description="They pay")
    cat.save(ACTIVE, "Active", category="Engagement")
    cat.save(PAID, "Alice's scratch", visibility="personal")
    return path


def run(*argv: str) -> int:
    return cli.main(list(argv))


def test_catalog_list_as_a_table_and_as_json(catalog_file, capsys):
    assert run("--catalog", str(catalog_file), "catalog", "list") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "NAME", "CATEGORY", "TYPE", "VISIBILITY", "OWNER", "REV"]
    assert len(out) == 3  # the personal segment belongs to alice, not to this login
    assert "Paid users" in out[1] and "Revenue" in out[1]
    assert run("catalog", "list", "--catalog", str(catalog_file), "--all", "--json") == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in entries] == ["Paid users", "Active", "Alice's scratch"]
    assert run("--catalog", str(catalog_file), "catalog", "list", "--category", "engagement") == 0
    assert "Active" in capsys.readouterr().out
    assert run("--catalog", str(catalog_file), "catalog", "list", "--search", "PAY", "--json") == 0
    assert [e["name"] for e in json.loads(capsys.readouterr().out)] == ["Paid users"]


def test_catalog_show_by_name(catalog_file, capsys):
    assert run("--catalog", str(catalog_file), "catalog", "show", "paid USERS") == 0
    out = capsys.readouterr().out
    assert "name:        Paid users" in out
    assert "selects:     subscription_type = paid" in out
    assert '"value": "paid"' in out
    assert run("--catalog", str(catalog_file), "catalog", "show", "Active", "--json") == 0
    assert json.loads(capsys.readouterr().out)["definition"] == ACTIVE


def test_catalog_history(catalog_file, capsys):
    cat = Catalog(catalog_file, user="bob")
    cat.update(cat.get("Active"), description="Sessions in the last 3 days")
    assert run("--catalog", str(catalog_file), "catalog", "history", "Active") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:3] == ["1", "create", "alice"]
    assert lines[2].split()[:3] == ["2", "update", "bob"] and lines[2].endswith("description")


def test_not_found_is_exit_3_with_a_suggestion(catalog_file, capsys):
    assert run("--catalog", str(catalog_file), "catalog", "show", "Paid user") == cli.NOT_FOUND
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("heapseg: error: no segment with id or name 'Paid user'")
    assert "did you mean 'Paid users'" in captured.err
    assert run("--catalog", str(catalog_file.with_name("nope.json")), "catalog", "list") == 3
    assert "no catalog file at" in capsys.readouterr().err


def test_usage_errors_are_exit_2(catalog_file, capsys, monkeypatch):
    monkeypatch.delenv("HEAPSEG_CATALOG", raising=False)
    assert run("catalog", "list") == cli.USAGE
    assert "pass --catalog FILE or set HEAPSEG_CATALOG" in capsys.readouterr().err
    assert run("frobnicate") == cli.USAGE
    assert "invalid choice" in capsys.readouterr().err
    assert run("--catalog", str(catalog_file), "export", "Active") == cli.USAGE  # no -o
    assert "-o/--output" in capsys.readouterr().err
    assert run("--catalog", str(catalog_file), "count", "Active", "--as-of", "soon") == 2
    assert "--as-of" in capsys.readouterr().err


def test_catalog_from_the_environment(catalog_file, capsys, monkeypatch):
    monkeypatch.setenv("HEAPSEG_CATALOG", str(catalog_file))
    assert run("catalog", "show", "Active", "--json") == 0
    assert json.loads(capsys.readouterr().out)["name"] == "Active"


def test_a_damaged_catalog_is_exit_5(tmp_path, capsys):
    path = tmp_path / "team.json"
    path.write_text('{"format": "heapseg-catalog", "version": 1, "segm')
    assert run("--catalog", str(path), "catalog", "list") == cli.CATALOG_ERROR
    assert "not valid JSON (truncated or damaged?)" in capsys.readouterr().err
    assert path.read_text() == '{"format": "heapseg-catalog", "version": 1, "segm'


def test_validate_reports_problems_and_exits_1(catalog_file, data_file, capsys):
    assert run("--catalog", str(catalog_file), "catalog", "validate") == 0
    assert "no problems; 3 segment(s)" in capsys.readouterr().err
    doc = json.loads(catalog_file.read_text())
    doc["segments"][1]["definition"]["rules"][0]["kind"] = "prediction"
    catalog_file.write_text(json.dumps(doc))
    active_id = doc["segments"][1]["id"]
    assert run("--catalog", str(catalog_file), "catalog", "validate") == cli.PROBLEMS
    captured = capsys.readouterr()
    assert captured.out.startswith(f"segment '{active_id}': definition.rules[0].kind:")
    assert "1 problem(s) found; 2 segment(s) usable" in captured.err
    assert run("--catalog", str(catalog_file), "catalog", "validate", "--json") == 1
    (problem,) = json.loads(capsys.readouterr().out)
    assert (problem["id"], problem["path"]) == (active_id, "definition.rules[0].kind")


def test_validate_with_data_checks_properties(tmp_path, data_file, capsys):
    path = tmp_path / "team.json"
    typo = {
        "combinator": "and",
        "rules": [{"kind": "user", "field": "plan", "operator": "=", "value": "x"}],
    }
    entry = Catalog(path, user="alice").save(typo, "Typo")
    assert run("--catalog", str(path), "catalog", "validate") == 0
    capsys.readouterr()
    assert run("--catalog", str(path), "--data", str(data_file), "catalog", "validate") == 1
    out = capsys.readouterr().out
    assert entry.id in out and "plan" in out
    assert run("--catalog", str(path), "--data", str(data_file), "count", "Typo") == 1
    assert "plan" in capsys.readouterr().err


def test_count_prints_the_number_alone(catalog_file, data_file, capsys):
    assert run("--catalog", str(catalog_file), "--data", str(data_file), "count", "Paid users") == 0
    assert capsys.readouterr().out == "3\n"
    argv = ["count", "Active", "--catalog", str(catalog_file), "--data", str(data_file)]
    assert run(*argv, "--as-of", "2026-01-04") == 0
    assert capsys.readouterr().out == "3\n"  # u1, u3, u5
    assert run(*argv, "--as-of", "2026-01-10T00:00:00+00:00") == 0
    assert capsys.readouterr().out == "1\n"  # u2


def test_export_and_sql(catalog_file, data_file, tmp_path, capsys):
    target = tmp_path / "paid.csv"
    argv = ["--catalog", str(catalog_file), "--data", str(data_file)]
    assert run(*argv, "export", "Paid users", "-o", str(target), "--properties", "country") == 0
    assert capsys.readouterr().err.startswith("heapseg: wrote the members of seg-paid-users-")
    assert pd.read_csv(target).to_dict("list") == {
        "user_id": ["u2", "u3", "u6"],
        "country": ["US", "US", "US"],
    }
    assert run(*argv, "export", "Paid users", "-o", str(tmp_path / "paid.xlsx")) == 4
    assert ".csv or .parquet" in capsys.readouterr().err
    assert run(*argv, "sql", "Paid users") == 0
    sql = capsys.readouterr().out
    assert "SELECT" in sql and "'paid'" in sql


def test_unreadable_data_is_exit_4(catalog_file, tmp_path, capsys):
    argv = ["--catalog", str(catalog_file), "count", "Active"]
    assert run(*argv, "--data", str(tmp_path / "missing.duckdb")) == cli.DATA_ERROR
    assert "no such file or folder" in capsys.readouterr().err
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    assert run(*argv, "--data", str(empty)) == cli.DATA_ERROR
    assert capsys.readouterr().err.startswith("heapseg: error:")


def test_the_installed_entry_point_runs_as_a_process(catalog_file, data_file):
    options = ["--catalog", str(catalog_file), "--data", str(data_file)]
    done = subprocess.run(
        [sys.executable, "-m", "heapseg.cli", "count", "Paid users", *options],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "3\n", "")
    missing = subprocess.run(
        [sys.executable, "-m", "heapseg.cli", "--catalog", str(catalog_file), "count", "Nobody"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 3 and missing.stdout == ""
    assert missing.stderr.startswith("heapseg: error: no segment")


def test_an_unknown_event_is_a_warning_on_stderr(tmp_path, data_file, capsys):
    path = tmp_path / "team.json"
    typo = {"combinator": "and", "rules": [{"kind": "event", "event": "Sesion"}]}
    Catalog(path, user="alice").save(typo, "Typo")
    assert run("--catalog", str(path), "--data", str(data_file), "count", "Typo") == 0
    captured = capsys.readouterr()
    assert captured.out == "0\n"
    assert captured.err.startswith("heapseg: warning: ")
    assert "Sesion" in captured.err and "did you mean 'Session'" in captured.err


# ------------------------------------------------------------------------- hostile inputs


def test_export_refuses_to_overwrite_without_force(catalog_file, data_file, tmp_path, capsys):
    """Issue 14, finding 5."""
    target = tmp_path / "paid.csv"
    target.write_text("keep me\n")
    argv = ["--catalog", str(catalog_file), "--data", str(data_file)]
    assert run(*argv, "export", "Paid users", "-o", str(target)) == cli.DATA_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"heapseg: error: {target} already exists")
    assert "--force" in err
    assert target.read_text() == "keep me\n"
    assert run(*argv, "export", "Paid users", "-o", str(target), "--force") == 0
    assert pd.read_csv(target)["user_id"].tolist() == ["u2", "u3", "u6"]
    assert sorted(os.listdir(tmp_path)) == sorted(["paid.csv", *KEPT])


KEPT = ["shop.duckdb", "team.json", "team.json.lock", "team.json.history.jsonl"]


def run_unprivileged(*argv: str) -> subprocess.CompletedProcess:
    """The CLI as a process without root's permission override (see tests/catalog)."""
    from tests.catalog.test_hostile_paths import as_unprivileged

    command = as_unprivileged([sys.executable, "-m", "heapseg.cli", *argv])
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_export_into_a_missing_or_read_only_folder_is_a_clear_error(
    catalog_file, data_file, tmp_path
):
    """Issue 14, finding 11: these were tracebacks with exit code 1."""
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    argv = ["--catalog", str(catalog_file), "--data", str(data_file), "export", "Paid users"]
    for target, says in (
        (tmp_path / "nodir" / "x.csv", f"the folder {tmp_path / 'nodir'} does not exist"),
        (read_only / "x.parquet", f"cannot write into {read_only}: Permission denied"),
    ):
        done = run_unprivileged(*argv, "-o", str(target))
        assert (done.returncode, done.stdout) == (cli.DATA_ERROR, ""), done.stderr
        assert done.stderr.startswith("heapseg: error: "), done.stderr
        assert says in done.stderr and "Traceback" not in done.stderr
    assert os.listdir(read_only) == []
    assert sorted(os.listdir(tmp_path)) == sorted(["read-only", *KEPT])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_export_cut_short_leaves_no_files_behind(
    catalog_file, data_file, tmp_path, monkeypatch, suffix
):
    """Issue 14, finding 11: a failed export left ``tmp_*`` files next to the target."""
    import ibis.expr.types as ir

    def cut_short(self, path, *args, **kwargs):
        # What DuckDB leaves when its COPY is cut short: its own temp file beside ours.
        Path(path).with_name(f"tmp_{Path(path).name}").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(ir.Table, f"to_{suffix[1:]}", cut_short)
    target = tmp_path / f"paid{suffix}"
    argv = ["--catalog", str(catalog_file), "--data", str(data_file)]
    assert run(*argv, "export", "Paid users", "-o", str(target)) == 130
    assert sorted(os.listdir(tmp_path)) == sorted(KEPT)


NASTY = "\x1b]0;pwned\x07\x1b[2J\rEvil\x9b31m\u202ereversed\x7f"
UNSAFE = ["\x1b", "\x07", "\r", "\x9b", "\u202e", "\x7f"]


def test_list_and_show_escape_control_characters(tmp_path, capsys):
    """Issue 14, finding 14: ESC, BEL, CR... from the file reached the terminal raw."""
    path = tmp_path / "team.json"
    cat = Catalog(path, user="mallory\x1b[8m")
    cat.save(PAID, "Nasty", description=NASTY, category=NASTY)
    outputs = []
    for command in (["list"], ["list", "--json"], ["show", "Nasty"], ["show", "Nasty", "--json"]):
        assert run("--catalog", str(path), "catalog", *command) == 0
        outputs.append(capsys.readouterr().out)
    for out in outputs:
        assert not [c for c in UNSAFE if c in out], out
    table, listed, shown, entry = outputs
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\rEvil\\x9b31m\\u202ereversed\\x7f" in table
    assert "mallory\\x1b[8m" in table
    assert "description: \\x1b]0;pwned" in shown and "owner:       mallory\\x1b[8m" in shown
    # The JSON says the same text, escaped the JSON way.
    assert json.loads(listed)[0]["description"] == NASTY
    assert json.loads(entry)["category"] == NASTY


def test_validate_escapes_control_characters(tmp_path, capsys):
    path = tmp_path / "team.json"
    Catalog(path, user="alice").save(PAID, "Fine")
    doc = json.loads(path.read_text())
    bad = dict(doc["segments"][0], id="seg-\u202eevil", name="Bad", revision=NASTY)
    doc["segments"].append(bad)
    path.write_text(json.dumps(doc))
    assert run("--catalog", str(path), "catalog", "validate") == cli.PROBLEMS
    out = capsys.readouterr().out
    assert "seg-\\u202eevil" in out and "revision" in out
    assert not [c for c in UNSAFE if c in out], out
    assert run("--catalog", str(path), "catalog", "validate", "--json") == cli.PROBLEMS
    out = capsys.readouterr().out
    assert not [c for c in UNSAFE if c in out], out
    assert json.loads(out)[0]["id"] == "seg-\u202eevil"


def test_a_5000_digit_integer_is_listed_and_shown_as_written(tmp_path, capsys):
    """Issue 14, finding 7, from the command line."""
    path = tmp_path / "team.json"
    cat = Catalog(path, user="alice")
    cat.save(PAID, "Fine")
    huge = "7" * 5000
    text = path.read_text().replace('"revision": 1', f'"revision": 1, "note": {huge}')
    path.write_text(text)
    assert run("--catalog", str(path), "catalog", "list", "--json") == 0
    out = capsys.readouterr().out
    assert f'"note": {huge}' in out
    assert run("--catalog", str(path), "catalog", "show", "Fine", "--json") == 0
    assert f'"note": {huge}' in capsys.readouterr().out
    assert run("--catalog", str(path), "catalog", "validate") == 0


# ------------------------------------------------------------------------------- fuzzing


@pytest.fixture(scope="module")
def fuzz_place(tmp_path_factory) -> dict[str, list[str]]:
    """Files the fuzzed command lines point at: good, damaged, missing, odd."""
    root = tmp_path_factory.mktemp("cli-fuzz")
    data = make_data(root / "shop.duckdb")
    catalog = root / "team.json"
    cat = Catalog(catalog, user="alice")
    paid = cat.save(PAID, "Paid users", category="Revenue", description=NASTY)
    cat.save(ACTIVE, "Active", category=NASTY)
    cat.update(paid, description="They pay")
    doc = json.loads(catalog.read_text())
    doc["segments"].append(dict(doc["segments"][0], id="seg-bad", name="Bad", revision=0))
    catalog.write_text(json.dumps(doc))
    damaged = root / "damaged.json"
    damaged.write_text('{"format": "heapseg-catalog", "version": 1, "segm')
    fifo = root / "fifo.json"
    os.mkfifo(fifo)
    out = root / "out"
    out.mkdir()
    (out / "exists.csv").write_text("keep\n")
    (out / "folder.csv").mkdir()
    return {
        "catalog": [str(catalog), str(damaged), str(fifo), str(root / "missing.json"), str(root)],
        "data": [str(data), str(root / "missing.duckdb"), str(catalog), str(out)],
        "id": ["Paid users", "active", paid.id, "seg-bad", "Bad", "nobody", NASTY],
        "output": [
            str(out / "members.csv"),
            str(out / "members.parquet"),
            str(out / "exists.csv"),
            str(out / "folder.csv"),
            str(out / "members.xlsx"),
            str(root / "nodir" / "members.csv"),
        ],
        "as_of": ["2026-01-04", "2026-01-10T00:00:00+00:00", "soon", "", "2026-13-01"],
    }


def run_captured(argv: list[str]) -> tuple[int, str, str]:
    """``heapseg`` in-process; ``--help`` exits through SystemExit(0), as argparse does."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def inside(folder: Path, environ: dict[str, str]) -> Iterator[None]:
    """Run in ``folder`` (a relative -o lands there) with these environment variables."""
    previous_dir, previous_env = os.getcwd(), dict(os.environ)
    os.chdir(folder)
    os.environ.pop("HEAPSEG_CATALOG", None)
    os.environ.update(environ)
    try:
        yield
    finally:
        os.chdir(previous_dir)
        os.environ.clear()
        os.environ.update(previous_env)


def draw_argv(data: st.DataObject, place: dict[str, list[str]]) -> list[str]:
    command = data.draw(
        st.sampled_from(
            [
                ["catalog", "list"],
                ["catalog", "show"],
                ["catalog", "validate"],
                ["catalog", "history"],
                ["count"],
                ["export"],
                ["sql"],
                ["catalog"],
                [],
            ]
        )
    )
    pick = {key: st.sampled_from(values) for key, values in place.items()}
    text = st.text(max_size=12)
    groups = st.one_of(
        st.tuples(st.just("--catalog"), pick["catalog"]),
        st.tuples(st.just("--data"), pick["data"]),
        st.tuples(st.just("--as-of"), pick["as_of"] | text),
        st.tuples(st.sampled_from(["-o", "--output"]), pick["output"]),
        st.tuples(st.sampled_from(["--category", "--owner", "--search", "--properties"]), text),
        st.tuples(st.just("--type"), st.sampled_from(["dynamic", "static", "frozen"])),
        st.tuples(st.sampled_from(["--json", "--all", "--force", "--help", "--nope"])),
        st.tuples(pick["id"] | text),
    )
    rest = [token for group in data.draw(st.lists(groups, max_size=6)) for token in group]
    return command + rest


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.data())
def test_random_command_lines_exit_with_a_documented_code(fuzz_place, tmp_path, data):
    argv = draw_argv(data, fuzz_place)
    catalog = Path(fuzz_place["catalog"][0])
    before = catalog.read_bytes()
    existing = Path(fuzz_place["output"][2])
    existing.write_text("keep\n")
    with inside(tmp_path, {"HEAPSEG_DATA": fuzz_place["data"][0]}):
        code, out, err = run_captured(argv)  # any exception but SystemExit fails the test
    assert code in (
        cli.OK,
        cli.PROBLEMS,
        cli.USAGE,
        cli.NOT_FOUND,
        cli.DATA_ERROR,
        cli.CATALOG_ERROR,
    )
    if code != cli.OK:
        if argv[:2] == ["catalog", "validate"] and code == cli.PROBLEMS:
            # The problems found are validate's answer, not an error: a summary ends them.
            assert re.search(r"^heapseg: \d+ problem\(s\) found; \d+ segment", err, re.M), err
        else:
            assert err.startswith(("heapseg: error: ", "usage: heapseg")), err
        assert "Traceback" not in err
    assert not [c for c in UNSAFE if c in out], out  # catalog text never reaches it raw
    assert catalog.read_bytes() == before  # the command line never writes the catalog
    if "--force" not in argv:  # an existing file is replaced only when asked
        assert existing.read_text() == "keep\n"


def test_a_catalog_in_a_folder_you_cannot_open_is_exit_5(catalog_file, tmp_path):
    """Issue 14, finding 11: a permission error was a traceback."""
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(catalog_file, locked / "team.json")
    locked.chmod(0o000)
    try:
        done = run_unprivileged("--catalog", str(locked / "team.json"), "catalog", "list")
    finally:
        locked.chmod(0o755)
    assert (done.returncode, done.stdout) == (cli.CATALOG_ERROR, ""), done.stderr
    assert done.stderr == (
        f"heapseg: error: cannot read the catalog {locked / 'team.json'}: Permission denied\n"
    )
