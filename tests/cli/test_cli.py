"""The command line itself: light start-up, options anywhere, --json, packaged recipes, completion, layers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.cli.commands import OneLineParser
from cnnlab.cli.main import main
from cnnlab.config.recipes import RECIPES_DIR, find_recipe, packaged_recipes
from cnnlab.errors import CnnlabError

ROOT = Path(__file__).parents[2]
HEAVY = ("torch", "torchvision", "numpy", "matplotlib")
TINY = ["data.name=synthetic", "data.options={shape: [1, 16, 16], train_size: 300, test_size: 100}",
        "data.val_size=100", "model.name=simple_nn", "train.epochs=1", "train.precision=fp32"]

# Runs main(argv) in a fresh interpreter and reports which heavy modules it imported.
PROBE = """
import sys
from cnnlab.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print(code, *sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


def cnnlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnlab.cli.main", *args], capture_output=True, text=True,
                          cwd=ROOT)


def exit_code(argv: list[str]) -> int:
    """What ``cnnlab ARGV`` exits with, whether main returns it or argparse raises SystemExit."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def heavy_imports(argv: list[str]) -> tuple[str, list[str]]:
    """(exit code, heavy modules imported) of ``cnnlab ARGV`` in a fresh interpreter."""
    result = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv], capture_output=True,
                            text=True, cwd=ROOT)
    code, *modules = result.stderr.strip().splitlines()[-1].split()
    return code, modules


# --- 1. start-up: commands that need no torch import none -----------------------------------


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["recipes"], ["train", "--help"],
                                  ["summary", "--help"], ["models", "--help"], ["bench", "--help"], ["data", "--help"], ["data", "stats", "--help"],
                                  ["bench", "models", "--help"], ["scratch", "--help"], ["completion", "--help"]])
def test_light_commands_import_no_torch_numpy_or_matplotlib(argv):
    assert heavy_imports(argv) == ("0", [])


def test_completion_builds_every_parser_without_torch():
    code, modules = heavy_imports(["completion", "bash"])
    # numpy comes from cnnlab.scratch's __init__ (the scratch train parser reads its defaults there).
    assert code == "0" and "torch" not in modules and "matplotlib" not in modules


def test_help_lists_every_command_and_version_is_the_package_one(capsys):
    assert exit_code(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("train", "recipes", "models", "report", "summary", "scratch", "bench", "completion"):
        assert f"\n    {command}" in out, command
    import cnnlab

    assert exit_code(["--version"]) == 0
    assert capsys.readouterr().out == f"cnnlab {cnnlab.__version__}\n"


# --- 2. options anywhere among the key=value words -----------------------------------------


def test_train_options_may_follow_and_precede_overrides(capsys):
    assert main(["train", "quick_test", "optim.lr=0.1", "--print-config", "train.epochs=7"]) == 0
    out = capsys.readouterr().out
    assert "  lr: 0.1\n" in out and "  epochs: 7\n" in out


def test_summary_options_may_come_between_model_options(capsys):
    assert main(["summary", "mlp", "hidden=[64,32]", "--input", "1x8x8", "dropout=0.1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["options"] == {"hidden": [64, 32], "dropout": 0.1}
    assert data["params"] == (64 * 64 + 64) + (64 * 32 + 32) + (32 * 10 + 10)


def test_global_debug_works_before_and_after_the_command():
    for argv in (["--debug", "train", "no_such_recipe"], ["train", "no_such_recipe", "--debug"]):
        result = cnnlab(*argv)
        assert result.returncode != 0 and "Traceback" in result.stderr and "CnnlabError" in result.stderr


@pytest.mark.parametrize("argv, message", [
    (["trian"], "unknown command 'trian'; did you mean 'train'? (valid: train, recipes"),
    (["train", "quick_test", "--bogus"], "unrecognized arguments: --bogus"),
    (["bench", "modles"], "unknown command 'modles'; did you mean 'models'?"),
    (["completion", "fish"], "unknown shell 'fish' (valid: bash, zsh, tcsh)"),
    (["train", "fashion_mnst"], "no recipe file or packaged recipe named 'fashion_mnst'; did you mean "
                                "'fashion_mnist'? ('cnnlab recipes' lists the packaged ones)"),
])
def test_user_errors_are_one_line_with_status_2(argv, message, capsys):
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cnnlab: error: ") and message in err


@pytest.mark.parametrize("argparse_message", [
    "argument COMMAND: invalid choice: 'trian' (choose from 'train', 'recipes', 'eval')",  # Python < 3.12.7
    "argument COMMAND: invalid choice: 'trian' (choose from train, recipes, eval)",  # 3.12.7 and later
])
def test_the_unknown_choice_message_reads_both_argparse_formats(argparse_message, capsys):
    with pytest.raises(SystemExit) as done:
        OneLineParser(prog="cnnlab").error(argparse_message)
    assert done.value.code == 2
    assert capsys.readouterr().err == ("cnnlab: error: unknown command 'trian'; did you mean 'train'? "
                                       "(valid: train, recipes, eval) (see 'cnnlab --help')\n")


# --- 3. --json: stdout holds the JSON alone ---------------------------------------------------


def test_train_json_prints_only_json_on_stdout(tmp_path, capsys):
    argv = ["train", "quick_test", "--json", *TINY, f"output_dir={tmp_path}"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["status"] == "completed" and summary["epochs_run"] == 1
    assert "epoch 1/1" in captured.err and "epoch 1/1" not in captured.out


def test_bench_models_json_prints_only_json_on_stdout(capsys):
    argv = ["bench", "models", "simple_nn", "--batch", "4", "--warmup", "0", "--steps", "1", "--min-seconds", "0",
            "--repeats", "1", "--no-bf16", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    (result,) = json.loads(captured.out)["results"]
    assert result["model"] == "simple_nn" and result["batch"] == 4 and result["fp32"] > 0 and "bf16_cl" not in result
    assert "bench simple_nn ..." in captured.err


# --- 4. recipes shipped in the package --------------------------------------------------------


def test_every_recipe_file_is_listed_with_its_leading_comment(capsys):
    files = sorted(p for p in RECIPES_DIR.rglob("*.yaml"))
    assert files, "no packaged recipes"
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Recipe", "Description", "File"]
    for path in files:
        name = path.relative_to(RECIPES_DIR).with_suffix("").as_posix()
        first = path.read_text().splitlines()[0]
        (line,) = [line for line in lines[2:] if line.split()[0] == name]
        assert first.startswith("# ") and first[2:].split(".")[0] in line and line.endswith(path.name)


def test_recipe_names_cover_subfolders_and_the_description_is_the_first_sentence(tmp_path):
    (tmp_path / "fast").mkdir()
    (tmp_path / "fast" / "fashion_mnist.yaml").write_text(
        "# Five epochs, e.g. for a demo. More\n# text here.\nname: fast\n")
    (tmp_path / "plain.yml").write_text("name: plain\n# not a leading comment\n")
    recipes = packaged_recipes(tmp_path)
    assert [r.name for r in recipes] == ["fast/fashion_mnist", "plain"]
    assert recipes[0].description == "Five epochs, e.g. for a demo."
    assert recipes[1].description == ""
    assert find_recipe("fast/fashion_mnist", tmp_path) == tmp_path / "fast" / "fashion_mnist.yaml"
    with pytest.raises(CnnlabError, match=r"did you mean 'fast/fashion_mnist'\?"):
        find_recipe("fast/fashion_mnsit", tmp_path)


def test_a_word_names_a_file_first_then_a_packaged_recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("fashion_mnist").write_text("name: local\n")  # an existing file wins over the packaged name
    assert find_recipe("fashion_mnist") == Path("fashion_mnist")
    assert find_recipe("quick_test") == RECIPES_DIR / "quick_test.yaml"
    assert find_recipe("missing.yaml") == Path("missing.yaml")  # the loader says it is not found


def test_packaged_recipe_trains_by_name_from_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "fashion_mnist", "--print-config"]) == 0
    assert "name: fashion_mnist" in capsys.readouterr().out


def test_recipes_are_package_data_and_the_old_paths_still_work():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["cnnlab"]
    package = RECIPES_DIR.parent
    shipped = {p for pattern in patterns for p in package.glob(pattern)}
    assert set(RECIPES_DIR.rglob("*.yaml")) <= shipped
    assert (ROOT / "recipes").resolve() == RECIPES_DIR
    assert (ROOT / "recipes" / "fashion_mnist.yaml").read_text() == (RECIPES_DIR / "fashion_mnist.yaml").read_text()


def test_bench_finetune_uses_the_packaged_recipes():
    from cnnlab.bench import finetune

    assert (RECIPES_DIR / finetune.PRETRAIN).is_file() and (RECIPES_DIR / finetune.FINETUNE).is_file()
    assert finetune.pretrain.__defaults__ == (RECIPES_DIR,)


# --- 5. shell completion ----------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_accepts_the_completion_and_completes_commands():
    script = (f"source <('{sys.executable}' -m cnnlab.cli.main completion bash) && complete -p cnnlab && "
              "COMP_WORDS=(cnnlab bench mo) COMP_CWORD=2 && _shtab_cnnlab && echo \"reply: ${COMPREPLY[*]}\"")
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "complete " in result.stdout and result.stdout.rstrip().endswith("reply: models")


@pytest.mark.parametrize("shell, marker", [("zsh", "#compdef cnnlab"), ("tcsh", "complete cnnlab")])
def test_zsh_and_tcsh_scripts_name_the_commands(shell, marker, capsys):
    assert main(["completion", shell]) == 0
    out = capsys.readouterr().out
    assert marker in out and "finetune" in out and "gradcheck" in out


# --- 6. layers: the benchmarks return data, the CLI prints it --------------------------------


def test_model_rows_return_numbers_not_text():
    from cnnlab.models.registry import model_rows

    rows = {row.name: row for row in model_rows("simple_nn*")}
    assert sorted(rows) == ["simple_nn", "simple_nn_bn", "simple_nn_bn_swish"]
    assert rows["simple_nn"].params == 82_030  # ECE 661's hand count
    assert rows["simple_nn"].input == (3, 32, 32) and rows["simple_nn"].classes == 10
    with pytest.raises(CnnlabError, match="no model matches 'transformer'"):
        model_rows("transformer")
