"""A newcomer's path: heapseg installed from a built wheel (not the source tree), and binder.

The wheel goes into a fresh virtual environment that borrows only the third-party packages of the
test environment (a ``.pth`` line, so nothing is downloaded and the editable install of the
checkout is not picked up). From a folder outside the repository, that environment must import
heapseg from its own site-packages, build the sample into a fresh cache folder, answer the CLI and
run a tutorial notebook.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str | os.PathLike, cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    """(python of a fresh venv with the wheel installed, its environment, a work folder)."""
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist, ROOT, cwd=base, env=env,
    )  # fmt: skip
    wheels = list(dist.glob("heapseg-*.whl"))
    assert len(wheels) == 1, wheels
    target = base / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    site = Path(
        _run(
            python,
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
            cwd=base,
            env=env,
        ).strip()
    )
    # Borrow the test environment's third-party packages, after the venv's own site-packages.
    (site / "borrowed.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run(
        sys.executable, "-m", "pip", "install", "--no-deps", "--target", site, wheels[0],
        cwd=base, env=env,
    )  # fmt: skip
    work = base / "work"
    work.mkdir()
    env = {
        **env,
        "HEAPSEG_DATA_DIR": str(base / "cache"),
        "PATH": f"{target / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": "",
    }
    return python, env, work


def test_the_wheel_is_what_gets_imported(wheel_env):
    python, env, work = wheel_env
    where = _run(python, "-c", "import heapseg; print(heapseg.__file__)", cwd=work, env=env)
    assert str(ROOT) not in where and "/venv/" in where


def test_the_wheel_builds_the_sample_into_the_user_cache_and_counts(wheel_env):
    python, env, work = wheel_env
    code = (
        "import heapseg; ds = heapseg.connect(); "
        "print(ds.count(heapseg.user.subscription_type == 'paid'), ds.total_users())"
    )
    paid, total = _run(python, "-c", code, cwd=work, env=env).splitlines()[-1].split()
    assert int(total) == 10_000 and 0 < int(paid) < 10_000
    assert list(Path(env["HEAPSEG_DATA_DIR"]).glob("heapseg-sample-*.duckdb"))
    heapseg_cli = Path(python).parent / "heapseg"
    script = heapseg_cli if heapseg_cli.exists() else None
    out = _run(
        *([script] if script else [python, "-m", "heapseg.cli"]),
        "--help",
        cwd=work,
        env=env,
    )
    assert "catalog" in out and "count" in out


def test_a_tutorial_runs_against_the_wheel(wheel_env):
    python, env, work = wheel_env
    notebook = work / "01-quickstart.ipynb"
    shutil.copy(ROOT / "notebooks" / "01-quickstart.ipynb", notebook)
    _run(
        python, "-m", "nbconvert", "--to", "notebook", "--execute",
        "--ExecutePreprocessor.kernel_name=python3", "--output", "ran.ipynb", notebook,
        cwd=work, env={**env, "JUPYTER_PATH": str(work / "jupyter")}, timeout=900,
    )  # fmt: skip
    assert (work / "ran.ipynb").stat().st_size > 0


# ---------------------------------------------------------------------------- binder


def _requirement(spec: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", spec)
    assert match, spec
    return match.group(1).lower(), match.group(3).replace(" ", "")


def test_binder_pins_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ours = dict(_requirement(d) for d in project["dependencies"])
    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    binder = dict(
        _requirement(line) for line in lines if line.strip() and not line.startswith(("#", "-e"))
    )
    for name, spec in binder.items():
        assert name in ours, f"binder pins {name}, which pyproject.toml does not depend on"
        assert spec == ours[name], f"{name}: binder says {spec!r}, pyproject.toml {ours[name]!r}"
    python = (ROOT / "binder" / "runtime.txt").read_text().strip().removeprefix("python-")
    low = project["requires-python"].removeprefix(">=")
    assert tuple(map(int, python.split("."))) >= tuple(map(int, low.split(".")))


def test_binder_postbuild_builds_the_sample_as_repo2docker_runs_it(tmp_path):
    # repo2docker runs postBuild from the repository root, with the image's python on PATH.
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "HEAPSEG_DATA_DIR": "",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("HEAPSEG_DATA_DIR")
    postbuild = ROOT / "binder" / "postBuild"
    assert os.access(postbuild, os.X_OK), "postBuild must be executable"
    out = _run(postbuild, cwd=ROOT, env=env)
    built = Path(out.strip().splitlines()[-1])
    assert built.is_relative_to(tmp_path / ".cache" / "heapseg") and built.exists()
