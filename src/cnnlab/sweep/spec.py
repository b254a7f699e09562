"""What a sweep varies: a grid of values, a search space for Optuna's TPE, seeds, pruning.

From the command line (``--grid optim.lr=0.1,0.01 --search optim.lr=loguniform:1e-4:1``) or
from a sweep file (``recipes/ablations/*.yaml``), which names its recipe and holds the same::

    recipe: fashion_mnist                 # a packaged recipe or a path
    overrides: [train.epochs=3]           # applied to every trial
    grid: {optim.lr: [1.0, 0.1, 0.01]}    # every combination, each run once
    search: {optim.weight_decay: "loguniform:1e-6:1e-2"}   # or TPE over these, `trials` times
    trials: 20
    seeds: 1                              # every point repeated with seeds 0..seeds-1
    prune: false                          # Optuna's MedianPruner on the validation metric
    note: the report's own settings ...

Every swept key is checked against the recipe before anything runs, with the config's own
validation (an unknown key names the nearest valid one).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from cnnlab.errors import CnnlabError

DISTRIBUTIONS = {  # name: (number of fields after the name, what it means)
    "loguniform": "loguniform:LOW:HIGH (floats, sampled on a log scale)",
    "uniform": "uniform:LOW:HIGH (floats)",
    "int": "int:LOW:HIGH (integers, both ends included)",
    "choice": "choice:A,B,C (one of the listed values)",
}
GRID_FORM = "--grid key=v1,v2,... (e.g. --grid optim.lr=0.1,0.01)"
SEARCH_FORM = "--search key=" + " | ".join(DISTRIBUTIONS.values())
SWEEP_KEYS = ("recipe", "overrides", "grid", "search", "trials", "seeds", "prune", "metric", "note")  # a sweep file's


@dataclass(frozen=True)
class Dist:
    """One searched key's space: kind (loguniform, uniform, int, choice) and its bounds or values."""

    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()


@dataclass
class SweepSpec:
    recipe: str
    overrides: list[str] = field(default_factory=list)
    grid: dict[str, list] = field(default_factory=dict)
    search: dict[str, Dist] = field(default_factory=dict)
    trials: int | None = None  # searched points (TPE); a grid has as many as its combinations
    seeds: int = 1
    prune: bool = False
    metric: str = "val_acc"  # the validation metric trials are ranked and pruned on (maximized)
    note: str = ""

    @property
    def mode(self) -> str:
        return "search" if self.search else "grid"

    def grid_points(self) -> list[dict]:
        """Every combination of the grid's values, seeds included (key 'seed'), in a fixed order."""
        axes = dict(self.grid)
        axes["seed"] = list(range(self.seeds))
        keys = list(axes)
        return [dict(zip(keys, values)) for values in itertools.product(*(axes[k] for k in keys))]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["search"] = {k: asdict(v) for k, v in self.search.items()}
        return data


def parse_value(text: str):
    """A value as YAML reads it (0.1 -> float, true -> bool, sgd -> str), as the overrides do."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_grid(word: str) -> tuple[str, list]:
    """'optim.lr=0.1,0.01' -> ('optim.lr', [0.1, 0.01])."""
    key, sep, text = word.partition("=")
    values = [parse_value(v.strip()) for v in text.split(",")] if text.strip() else []
    if not sep or not key.strip() or not values or any(v is None or v == "" for v in values):
        raise CnnlabError(f"bad grid '{word}': write {GRID_FORM}")
    return key.strip(), values


def parse_search(word: str) -> tuple[str, Dist]:
    """'optim.lr=loguniform:1e-4:1' -> ('optim.lr', Dist('loguniform', 1e-4, 1.0))."""
    key, sep, text = word.partition("=")
    kind, _, rest = text.partition(":")
    bad = CnnlabError(f"bad search '{word}': write {SEARCH_FORM}")
    if not sep or not key.strip() or kind not in DISTRIBUTIONS or not rest:
        raise bad
    if kind == "choice":
        choices = tuple(parse_value(v.strip()) for v in rest.split(","))
        if len(choices) < 2 or any(v is None or v == "" for v in choices):
            raise bad
        return key.strip(), Dist(kind, choices=choices)
    bounds = rest.split(":")
    try:
        low, high = (int(b) if kind == "int" else float(b) for b in bounds)
    except ValueError:
        raise bad from None
    if len(bounds) != 2 or not low < high or (kind == "loguniform" and low <= 0) or not math.isfinite(high):
        raise bad
    return key.strip(), Dist(kind, low, high)


def spec_from_args(recipe: str, overrides: list[str], grid: list[str], search: list[str], *, trials: int | None,
                   seeds: int, prune: bool) -> SweepSpec:
    """A spec from the command line's words; a sweep file given as RECIPE supplies the defaults."""
    from cnnlab.config.recipes import find_recipe

    path = find_recipe(recipe)  # a packaged name (ablations/lr_sweep) or a file
    spec = read_sweep_file(path) if is_sweep_file(path) else SweepSpec(recipe=recipe)
    spec.overrides = [*spec.overrides, *overrides]
    spec.grid.update(dict(parse_grid(w) for w in grid))
    spec.search.update(dict(parse_search(w) for w in search))
    spec.trials = trials if trials is not None else spec.trials
    spec.seeds = seeds if seeds is not None else spec.seeds
    spec.prune = prune or spec.prune
    return check_spec(spec)


def is_sweep_file(path: Path) -> bool:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "recipe" in data and ("grid" in data or "search" in data)


def read_sweep_file(path: Path) -> SweepSpec:
    """A sweep file (see the module docstring); its recipe is found beside it or among the packaged ones."""
    data = yaml.safe_load(path.read_text())
    unknown = set(data) - set(SWEEP_KEYS)
    if unknown:
        raise CnnlabError(f"{path}: unknown sweep key(s) {', '.join(sorted(unknown))} (valid: {', '.join(SWEEP_KEYS)})")
    grid = {k: v if isinstance(v, list) else [v] for k, v in (data.get("grid") or {}).items()}
    search = dict(parse_search(f"{k}={v}") for k, v in (data.get("search") or {}).items())
    recipe = str(data["recipe"])
    beside = path.parent / recipe
    return SweepSpec(recipe=str(beside) if beside.is_file() else recipe, overrides=list(data.get("overrides") or []),
                     grid=grid, search=search, trials=data.get("trials"), seeds=int(data.get("seeds", 1)),
                     prune=bool(data.get("prune", False)), metric=str(data.get("metric", "val_acc")),
                     note=str(data.get("note", "")))


def check_spec(spec: SweepSpec) -> SweepSpec:
    """Refuse what cannot run: no axis, both modes, a key the recipe lacks, a value it refuses."""
    from cnnlab.config.recipes import find_recipe

    if spec.grid and spec.search:
        raise CnnlabError("give either --grid (every combination) or --search (Optuna's TPE), not both")
    if not spec.grid and not spec.search and spec.seeds < 2:
        raise CnnlabError(f"nothing to sweep: give {GRID_FORM}, {SEARCH_FORM}, or --seeds N")
    if spec.search and not spec.trials:
        raise CnnlabError("--search needs --trials N (how many points TPE samples)")
    if spec.seeds < 1:
        raise CnnlabError(f"--seeds must be at least 1, got {spec.seeds}")
    if spec.metric not in ("val_acc", "val_loss"):
        raise CnnlabError(f"unknown sweep metric '{spec.metric}' (valid: val_acc, val_loss)")
    check_points(find_recipe(spec.recipe), spec)
    return spec


def check_points(path: Path, spec: SweepSpec) -> None:
    """Every grid point (for a search: both ends of each range, and each choice) is a config the
    recipe accepts, each swept key named by the override that sets it, and builds as training
    would build it (model options, optimizer keys, schedule, augmentations and loss), the failing
    point named."""
    from cnnlab.config import load_recipe
    from cnnlab.engine.preflight import check_config_parts

    if spec.grid:
        points = [{k: v for k, v in p.items() if k != "seed"} for p in spec.grid_points() if p["seed"] == 0]
    else:
        low = {k: d.choices[0] if d.kind == "choice" else d.low for k, d in spec.search.items()}
        high = {k: d.choices[0] if d.kind == "choice" else d.high for k, d in spec.search.items()}
        points = [low, high, *({**low, k: c} for k, d in spec.search.items() if d.kind == "choice" for c in d.choices)]
    for point in points:
        config = load_recipe(path, [*spec.overrides, *(override(k, v) for k, v in point.items())])
        try:
            check_config_parts(config)
        except CnnlabError as e:
            words = ", ".join(f"{k}={v}" for k, v in point.items())
            raise CnnlabError(f"the point {words} cannot train: {e}") from None


def override(key: str, value) -> str:
    """'key=value' with the value written as YAML (lists and booleans survive)."""
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return f"{key}={text.removesuffix(chr(10) + '...').strip()}"
