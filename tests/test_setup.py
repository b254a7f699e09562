"""The set-up scripts on a bare machine, simulated: a python without venv support, a half-made
venv, no Fashion-MNIST with neither apt nor network, and a failing step that must say why.

Nothing here installs anything or touches the network: apt-get is kept off PATH, downloads go
to a closed local port, and every folder is a temporary one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import need

REPO = Path(__file__).parents[1]
SCRIPTS = REPO / "scripts"
VERSION = "%d.%d" % sys.version_info[:2]
# The tools the scripts use besides bash's builtins; apt-get and sudo are left out on purpose.
TOOLS = ("bash", "dirname", "mktemp", "rm", "tail", "sed", "id", "grep", "wc", "cat")


def _bare_path(tmp_path: Path) -> str:
    """A PATH with only TOOLS: no apt-get, no sudo, no python."""
    bin_dir = tmp_path / "bare-bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in TOOLS:
        if not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(shutil.which(tool))
    return str(bin_dir)


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)
    return path


def _run(args, tmp_path: Path, **env) -> subprocess.CompletedProcess:
    """Run a command with a bare PATH, HOME and TMPDIR in tmp_path, and no CI or proxies set."""
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    base = {key: value for key, value in os.environ.items()
            if key not in ("CI", "CNNLAB_DATA", "CNNLAB_DEBIAN_FASHION_DIR") and "proxy" not in key.lower()}
    base.update(PATH=_bare_path(tmp_path), HOME=str(tmp_path), TMPDIR=str(tmp))
    return subprocess.run([str(a) for a in args], cwd=tmp_path, env={**base, **env},
                          capture_output=True, text=True, timeout=60)


def _python_without_ensurepip(tmp_path: Path) -> Path:
    """This interpreter as Debian's python3 without python3-venv: ``import ensurepip`` fails."""
    shadow = tmp_path / "shadow" / "ensurepip"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'ensurepip'\")\n")
    return _script(tmp_path, "python-no-ensurepip",
                   f'PYTHONPATH={shadow.parent} exec {sys.executable} "$@"\n')


def _half_made_venv(path: Path) -> Path:
    """What ``python3 -m venv`` leaves where ensurepip is missing: a python, no pip."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    assert (path / "bin" / "python").exists()
    return path


# --- scripts/venv.sh ------------------------------------------------------------------------------

def test_python_without_ensurepip_gets_one_line_naming_python3_venv(tmp_path):
    venv = tmp_path / "venv"
    result = _run(["bash", SCRIPTS / "venv.sh", _python_without_ensurepip(tmp_path), venv], tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cnnlab: error: ") and "cannot make virtual environments" in lines[0]
    assert "apt-get install python3-venv" in lines[0] and f"python{VERSION}-venv" in lines[0]
    assert not venv.exists()


def test_venv_failing_as_debians_does_gets_the_same_line_and_leaves_no_half_venv(tmp_path):
    # passes `import ensurepip`, but `-m venv` makes a venv without pip and fails with Debian's text
    message = ("The virtual environment was not created successfully because ensurepip is not\n"
               "available.  On Debian/Ubuntu systems, you need to install the python3-venv\n"
               f"package using the following command.\n\n    apt install python{VERSION}-venv\n")
    python = _script(tmp_path, "python-debian", f"""
if [ "$1 $2" = "-m venv" ]; then
  {sys.executable} -m venv --without-pip "$3"
  printf '{message}' >&2
  exit 1
fi
exec {sys.executable} "$@"
""")
    venv = tmp_path / "venv"
    result = _run(["bash", SCRIPTS / "venv.sh", python, venv], tmp_path)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and "apt-get install python3-venv" in result.stderr
    assert not venv.exists()


def test_half_made_venv_is_detected_and_removed(tmp_path):
    venv = _half_made_venv(tmp_path / "venv")
    result = _run(["bash", SCRIPTS / "venv.sh", _python_without_ensurepip(tmp_path), venv], tmp_path)
    assert f"{venv} is half-made (its python cannot run pip); making it again" in result.stdout
    assert result.returncode == 1 and "python3-venv" in result.stderr
    assert not venv.exists()


def test_half_made_venv_is_made_again_and_a_whole_one_left_alone(tmp_path):
    venv = _half_made_venv(tmp_path / "venv")
    result = _run(["bash", SCRIPTS / "venv.sh", sys.executable, venv], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "half-made" in result.stdout
    subprocess.run([venv / "bin" / "python", "-m", "pip", "--version"], check=True, capture_output=True)

    marker = venv / "kept"
    marker.touch()
    again = _run(["bash", SCRIPTS / "venv.sh", sys.executable, venv], tmp_path)
    assert again.returncode == 0 and again.stdout == again.stderr == ""
    assert marker.exists()


def test_make_sees_a_half_made_venv_even_with_its_install_stamps(tmp_path):
    need(shutil.which("make") is not None, "make is not installed")
    venv = _half_made_venv(tmp_path / "venv")
    (venv / ".installed").touch()
    dry_run = subprocess.run(["make", "-n", "-C", REPO, "install", f"VENV={venv}"],
                             capture_output=True, text=True, timeout=30)
    assert "scripts/venv.sh" in dry_run.stdout

    (venv / "lib" / f"python{VERSION}" / "site-packages" / "pip").mkdir()  # whole now, as far as make looks
    (venv / ".installed").touch()
    up_to_date = subprocess.run(["make", "-q", "-C", REPO, "install", f"VENV={venv}"], timeout=30)
    assert up_to_date.returncode == 0


# --- scripts/logged.sh (scripts/lib.sh) -------------------------------------------------------------

def test_failing_step_shows_its_command_and_the_end_of_its_output(tmp_path):
    result = _run(["bash", SCRIPTS / "logged.sh", "doing the thing",
                   "bash", "-c", "echo progress; echo 'E: the reason' >&2; exit 7"], tmp_path)
    assert result.returncode == 1
    first, *tail = result.stderr.splitlines()
    assert first.startswith("cnnlab: doing the thing failed: `bash -c echo progress; echo 'E: the reason' >&2; exit 7` "
                            "exited with status 7; the end of its output (all of it: ")
    assert "  | progress" in tail and "  | E: the reason" in tail
    assert len(list((tmp_path / "tmp").iterdir())) == 1  # the log is kept


def test_working_step_is_quiet_and_leaves_no_log(tmp_path):
    result = _run(["bash", SCRIPTS / "logged.sh", "doing the thing", "bash", "-c", "echo progress"], tmp_path)
    assert result.returncode == 0 and result.stdout == result.stderr == ""
    assert list((tmp_path / "tmp").iterdir()) == []


# --- scripts/get_fashion_mnist.sh ---------------------------------------------------------------------

# torchvision's FashionMNIST as far as the download goes, without the seconds of importing torch
FAKE_TORCHVISION = """
import urllib.request

class FashionMNIST:
    def __init__(self, root, train, download):
        urllib.request.urlopen("http://fashion-mnist.example/train-images-idx3-ubyte.gz", timeout=5)
"""


def _get_data(tmp_path: Path, *args: str, python: Path | str = sys.executable, data: Path | None = None, **env):
    """The data script where nothing is found: no apt-get, downloads refused, empty folders."""
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    fake = tmp_path / "fake" / "torchvision"
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "__init__.py").touch()
    (fake / "datasets.py").write_text(FAKE_TORCHVISION)
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused
    return _run(["bash", SCRIPTS / "get_fashion_mnist.sh", *args], tmp_path, PYTHON=str(python),
                PYTHONPATH=str(fake.parent), CNNLAB_DATA=str(data or empty), CNNLAB_DEBIAN_FASHION_DIR=str(empty),
                http_proxy=closed, https_proxy=closed, **env)


def test_missing_data_outside_ci_is_a_warning_so_the_tests_run(tmp_path):
    result = _get_data(tmp_path, "--optional")
    assert result.returncode == 0, result.stderr
    assert "cnnlab: warning: Fashion-MNIST is not available, so the tests that need it will skip" in result.stderr
    # why the download failed is shown, not thrown away
    assert "cnnlab: torchvision's download of Fashion-MNIST failed: " in result.stderr
    assert "Connection refused" in result.stderr


def test_missing_data_under_ci_is_an_error(tmp_path):
    result = _get_data(tmp_path, "--optional", CI="true")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("cnnlab: error: Fashion-MNIST is not available")
    assert "CI=true" in result.stderr


def test_missing_data_for_make_run_is_an_error(tmp_path):
    result = _get_data(tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("cnnlab: error: Fashion-MNIST is not available")


def test_data_already_there_is_quiet(tmp_path):
    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / f"{stem}.gz").touch()  # the lookup checks the files are there; reading them is the loader's job
    result = _get_data(tmp_path, data=folder.parent, CI="true")
    assert result.returncode == 0 and result.stdout == result.stderr == ""


def test_python_without_cnnlab_is_a_set_up_error_not_missing_data(tmp_path):
    python = _script(tmp_path, "python-bare", "echo \"ModuleNotFoundError: No module named 'cnnlab'\" >&2; exit 1\n")
    result = _get_data(tmp_path, "--optional", python=python)
    assert result.returncode == 1
    assert result.stderr.startswith("cnnlab: error: cannot look for Fashion-MNIST with ")
    assert "No module named 'cnnlab'" in result.stderr


# --- scripts/get_test_deps.sh -------------------------------------------------------------------------

def test_missing_browser_without_apt_is_a_note_and_the_tests_run(tmp_path):
    result = _run(["bash", SCRIPTS / "get_test_deps.sh"], tmp_path)  # no chromium, no apt-get on PATH
    assert result.returncode == 0
    assert "note: chromium is not installed; the browser tests will skip (fail under CI=true)" in result.stderr
