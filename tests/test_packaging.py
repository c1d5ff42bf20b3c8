"""Release packaging: the sdist and wheel that ``python -m build`` makes, installed alone in a fresh venv.

The build runs with ``--no-isolation`` (the backend, setuptools, comes from the ``dev`` extra): an
isolated build would download setuptools into a throwaway environment on every run. It builds the
sdist first and the wheel *from that sdist*, so a wheel that has everything proves the sdist does too.
"""

import configparser
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILTIN_PLUGINS = {"sb3", "tabular", "bandits", "policy_gradient"}
# Copied into the build tree only when git cannot say which files are the project's.
_JUNK = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.py[cod]", "logs", ".pytest_cache",
         ".ruff_cache", ".hypothesis", "benchmark", "tensorboard")


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def _cfg_map(value: str) -> dict[str, str]:
    """A setup.cfg ``key = value`` list (package_dir, entry points) as a dict."""
    pairs = (line.split("=", 1) for line in value.strip().splitlines() if "=" in line)
    return {key.strip(): target.strip() for key, target in pairs}


def _entry_point_plugins() -> dict[str, str]:
    return _cfg_map(_setup_cfg()["options.entry_points"]["rlhub"])


def _package_dirs() -> dict[str, str]:
    """Installed top-level package -> its source folder, from setup.cfg's package_dir."""
    return _cfg_map(_setup_cfg()["options"]["package_dir"])


def _source_files(root: Path) -> dict[str, str]:
    """Every file of the packages setup.cfg installs: path in the source tree -> path once installed."""
    files = {}
    for package, folder in _package_dirs().items():
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".pyo"}:
                rel = path.relative_to(root / folder).as_posix()
                files[f"{folder}/{rel}"] = f"{package}/{rel}"
    return files


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def _copy_project(dest: Path) -> Path:
    """The project as a fresh checkout would have it (tracked and new files, nothing ignored)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(*_JUNK))
        return dest
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is skipped
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """(sdist, wheel, source tree they were built from)."""
    pytest.importorskip("build", reason="the `build` package is not installed (pip install -e '.[dev]')")
    base = tmp_path_factory.mktemp("packaging")
    source = _copy_project(base / "src")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", base / "dist", source])
    sdists = sorted((base / "dist").glob("*.tar.gz"))
    wheels = sorted((base / "dist").glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted((base / "dist").iterdir())
    return sdists[0], wheels[0], source


@pytest.fixture(scope="module")
def venv(dists, tmp_path_factory):
    """A fresh venv with only the wheel installed (no dependencies): (python, bin folder, site-packages)."""
    _, wheel, _ = dists
    home = tmp_path_factory.mktemp("venv") / "fresh"
    _run([sys.executable, "-m", "venv", home])
    bindir = home / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    _run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel], env=env)
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    return python, bindir, Path(purelib)


def test_setup_cfg_declares_every_builtin_plugin():
    plugins = _entry_point_plugins()
    assert BUILTIN_PLUGINS <= set(plugins), plugins
    # Every plugin package under plugins/ is declared, installed, and loaded through its entry point.
    on_disk = {p.name for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").is_file()}
    assert on_disk <= set(plugins.values()), f"plugins/ packages without an `rlhub` entry point: {on_disk}"
    assert on_disk <= set(_package_dirs()), f"plugins/ packages missing from package_dir: {on_disk}"


def test_twine_check_passes(dists):
    sdist, wheel, _ = dists
    result = _run([sys.executable, "-m", "twine", "check", "--strict", sdist, wheel])
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_sdist_has_what_the_wheel_needs(dists):
    sdist, _, source = dists
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    wanted = {"README.md", "setup.cfg", "pyproject.toml", "MANIFEST.in", "tests/conftest.py"} | set(_source_files(source))
    assert not wanted - names, f"missing from {sdist.name}: {sorted(wanted - names)}"
    assert {f"zoo_configs/{p.name}" for p in (source / "zoo_configs").glob("*.yml")} <= names
    assert {"rlhub/py.typed"} | {f"plugins/{m}/py.typed" for m in _entry_point_plugins().values()} <= names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)


def test_wheel_requires_classic_control_rendering_without_extras(dists):
    """gymnasium[classic-control] (pygame) in the base install: replay videos of CartPole & co. work after a
    plain ``pip install rlhub``, not only with the [box2d] extra."""
    from packaging.requirements import Requirement

    _, wheel, _ = dists
    with zipfile.ZipFile(wheel) as zf:
        metadata = next(zf.read(n).decode() for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
    requires = [Requirement(line.split(":", 1)[1]) for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    base = [r for r in requires if r.name.lower() == "gymnasium" and r.marker is None]
    assert base and any("classic-control" in r.extras for r in base), [str(r) for r in requires]
    assert "Description-Content-Type: text/markdown" in metadata


def test_installed_wheel_has_entry_points_command_and_data(dists, venv):
    _, _, source = dists
    python, bindir, purelib = venv
    probe = ("import importlib.metadata as m, json; "
             "print(json.dumps({e.name: e.value for e in m.entry_points(group='rlhub')}))")
    entry_points = json.loads(_run([python, "-c", probe], cwd=bindir.parent).stdout)
    assert entry_points == _entry_point_plugins()
    assert BUILTIN_PLUGINS <= set(entry_points)
    assert (bindir / ("rlhub.exe" if os.name == "nt" else "rlhub")).is_file()
    installed = {p.relative_to(purelib).as_posix() for p in purelib.rglob("*") if p.is_file()}
    missing = {src: dest for src, dest in _source_files(source).items() if dest not in installed}
    assert not missing, f"source files the wheel does not install: {missing}"
    ymls = {p.name for p in (source / "zoo_configs").glob("*.yml")}
    assert ymls and {f"rlhub_zoo_configs/{name}" for name in ymls} <= installed
    assert {"rlhub/py.typed"} | {f"{m}/py.typed" for m in entry_points.values()} <= installed


def test_installed_command_runs_from_the_wheel(venv):
    """``rlhub algos`` from the fresh venv, its dependencies borrowed from this (dev) environment.

    They are borrowed through a .pth path line, which is appended to sys.path after the venv's own
    site-packages and whose folder's own .pth files are not processed: the dev install of rlhub (an
    editable finder installed by a .pth) stays invisible, and rlhub's code *and* metadata (entry
    points) come from the wheel. PYTHONPATH would not do: it goes before site-packages, so the dev
    install's rlhub dist-info would shadow the wheel's entry points.
    """
    python, bindir, purelib = venv
    (purelib / "_rlhub_test_dev_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    cwd = bindir.parent  # never the repository root, whose rlhub/ would be imported from the current directory
    where = ("import importlib.metadata as m, rlhub, rlhub_sb3; "
             "print(rlhub.__file__); print(rlhub_sb3.__file__); print(m.distribution('rlhub')._path)")
    paths = _run([python, "-c", where], env=env, cwd=cwd).stdout.split()
    assert len(paths) == 3 and all(Path(p).resolve().is_relative_to(purelib.resolve()) for p in paths), paths
    algos = json.loads(_run([bindir / "rlhub", "algos", "--json"], env=env, cwd=cwd).stdout)
    assert {a["plugin"] for a in algos} == set(_entry_point_plugins())
    assert {"ppo", "q_learning", "ucb", "reinforce"} <= {a["algo_id"] for a in algos}


def test_classic_control_renders_frames():
    """What replay videos need: CartPole renders an RGB frame in the installed environment (pygame present)."""
    import gymnasium as gym
    import numpy as np

    env = gym.make("CartPole-v1", render_mode="rgb_array")
    try:
        env.reset(seed=0)
        frame = env.render()
    finally:
        env.close()
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.shape[0] > 0 and frame.shape[1] > 0
    assert frame.std() > 0  # a drawn cart, not a blank canvas


def _python_floor() -> tuple[int, int]:
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(_setup_cfg()["options"]["python_requires"])
    floors = [s.version for s in spec if s.operator in {">=", "~="}]
    assert len(floors) == 1, f"python_requires {spec} has no single lower bound"
    major, minor, *_ = (int(part) for part in floors[0].split("."))
    return major, minor


def test_package_compiles_under_the_declared_python_floor(tmp_path):
    """Under python3.<floor> when that interpreter is here; otherwise the floor is the interpreter running the
    tests (CI runs the floor, 3.11)."""
    major, minor = _python_floor()
    interpreter = shutil.which(f"python{major}.{minor}")
    if interpreter:  # a pyenv shim for a version that is not selected exists on PATH but does not run
        probe = subprocess.run([interpreter, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                               text=True, timeout=60)
        if probe.returncode != 0 or probe.stdout.split() != [str(major), str(minor)]:
            interpreter = None
    if interpreter is None:
        assert sys.version_info[:2] == (major, minor), (
            f"python_requires declares {major}.{minor}, no python{major}.{minor} is on PATH, and the tests run "
            f"under {sys.version_info[0]}.{sys.version_info[1]}: the declared floor is unchecked")
        return
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path)}  # keep the byte code out of the work tree
    _run([interpreter, "-m", "compileall", "-q", "rlhub", "plugins"], cwd=ROOT, env=env)
