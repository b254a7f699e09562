"""Seed realistic one-line bugs into a copy of cnnlab and count how many the fast suite catches.

    .venv/bin/python scripts/seeded_bugs.py --set fresh        # the figure in docs/RELIABILITY.md
    .venv/bin/python scripts/seeded_bugs.py --list             # names and descriptions
    .venv/bin/python scripts/seeded_bugs.py --only loader_floor_batches split_val_kept_in_train

pytest is given the test folders with the fast unit tests first (data, models, run, engine, the
rest, cli last) and stops at the first failure, so a caught bug costs seconds and only a
survivor costs the whole suite (about 4 minutes here).

The repository is copied to a temporary folder once (the working tree is never touched). The
unchanged copy must pass first; then each bug is applied alone, ``pytest -x -q -m "not slow"``
runs in the copy with PYTHONPATH pointing at the copy's src/, and the file is restored. A bug
is caught when pytest exits non-zero. A bug whose behaviour is truly unchanged (an equivalent
mutant) measures nothing: replace it rather than count it. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
# What the tests read besides src/ and tests/: pyproject (markers, import-linter contract), the
# recipes link, the set-up scripts and Makefile (tests/test_setup.py), the docs.
COPIED = ("src", "tests", "pyproject.toml", "recipes", "scripts", "docs", "Makefile", "constraints.txt",
          "README.md", "LICENSE", ".ci")
PYTEST = ["-m", "pytest", "-x", "-q", "-m", "not slow", "-p", "no:cacheprovider"]
FIRST = ("data", "models", "run", "engine")  # the fastest tests of the core; cli (subprocesses) goes last
TIMEOUT_S = 1200  # a mutant that hangs the suite counts as caught, marked "timeout"


class Bug(NamedTuple):
    name: str
    file: str  # under src/cnnlab
    old: str  # must occur exactly once in the file
    new: str
    why: str


BUGS = [
    # --- data -------------------------------------------------------------------------------------
    Bug("crop_misses_last_offset", "data/augment.py",
        "dy = torch.randint(0, 2 * p + 1,", "dy = torch.randint(0, 2 * p,",
        "random_crop never draws the bottom-most vertical offset (off-by-one)"),
    Bug("crop_ignores_fill", "data/augment.py",
        "padded = F.pad(x, (p, p, p, p), value=fill)", "padded = F.pad(x, (p, p, p, p))",
        "random_crop pads with 0 whatever fill says (dropped argument)"),
    Bug("loader_floor_batches", "data/loader.py",
        "batches = -(-n // b)", "batches = n // b",
        "the last partial batch is dropped from every loader, val and test included"),
    Bug("loader_scale_by_mean", "data/loader.py",
        "255.0 * torch.tensor(stats.std, device", "255.0 * torch.tensor(stats.mean, device",
        "inputs are divided by the mean instead of the std (copy-paste)"),
    Bug("holdout_fraction_includes_one", "data/splits.py",
        "if 0 < size < 1 else int(size)", "if 0 < size <= 1 else int(size)",
        "val_size=1 means all of train (a fraction) instead of one image (< vs <=)"),
    Bug("split_val_kept_in_train", "data/splits.py",
        "keep[val_idx] = False", "keep[val_idx] = True",
        "val images stay in the train split (leakage)"),
    Bug("classes_not_renumbered", "data/splits.py",
        "return images[mask], lookup[labels[mask]]", "return images[mask], labels[mask]",
        "data.classes keeps the original label numbers"),
    Bug("stats_sample_std", "data/normalize.py",
        "std = np.sqrt(m2 / max(n, 1))", "std = np.sqrt(m2 / max(n - 1, 1))",
        "sample std (n-1) where the population std is meant"),
    Bug("idx_gz_never_compressed", "data/idx.py",
        'if path.suffix == ".gz" else data', 'if path.suffix == "gz" else data',
        "write_idx never gzips (suffix compared without its dot)"),
    Bug("labels_equal_to_K_pass", "data/datasets.py",
        "labels.max() >= K", "labels.max() > K",
        "a label equal to the number of classes passes the check (off-by-one)"),
    Bug("digits_test_part_inverted", "data/datasets.py",
        "test[members[: round(test_fraction * len(members))]] = True",
        "test[members[round(test_fraction * len(members)) :]] = True",
        "digits holds out 1 - test_fraction as test (wrong slice)"),
    Bug("cifar_hwc_reshape", "data/cifar.py",
        "return data.reshape(-1, 3, 32, 32), labels", "return data.reshape(-1, 32, 32, 3), labels",
        "CIFAR rows reshaped as HWC: images come out 32x32x3 with scrambled planes"),
    Bug("cifar_four_train_batches", "data/cifar.py",
        'f"data_batch_{i}" for i in range(1, 6)', 'f"data_batch_{i}" for i in range(1, 5)',
        "CIFAR-10 reads data_batch_1..4 and ignores the fifth (off-by-one)"),
    Bug("normalize_flag_inverted", "data/prepare.py",
        "if data.normalize else ChannelStats.identity(C)", "if not data.normalize else ChannelStats.identity(C)",
        "data.normalize=true leaves the inputs unnormalized and false normalizes them"),
    # --- engine -----------------------------------------------------------------------------------
    Bug("zero_grad_forgotten", "engine/loop.py",
        "optimizer.zero_grad(set_to_none=True)", "pass  # gradients accumulate",
        "gradients accumulate across steps"),
    Bug("scheduler_never_stepped", "engine/loop.py",
        "            scheduler.step()", "            pass",
        "the lr schedule never moves"),
    Bug("train_mode_not_set", "engine/loop.py",
        "    set_train_mode(model)\n", "    pass\n",
        "train_one_epoch never calls .train(): after the first validation it trains in eval mode"),
    Bug("accuracy_mean_of_batches", "engine/loop.py",
        "meter.update(hits / n, n)", "meter.update(hits / n, 1)",
        "accuracy is the unweighted mean of batch accuracies"),
    Bug("top5_for_five_classes", "engine/loop.py",
        "if num_classes > 5 else (1,)", "if num_classes >= 5 else (1,)",
        "top-5 is reported with exactly 5 classes, where it is always 100%"),
    Bug("meter_counts_batches", "engine/metrics.py",
        "self.count += n", "self.count += 1",
        "AverageMeter divides by batches, not images"),
    Bug("one_logit_scores_swapped", "engine/losses.py",
        "torch.cat([torch.zeros_like(logits), logits], dim=1)", "torch.cat([logits, torch.zeros_like(logits)], dim=1)",
        "a positive logit predicts class 0"),
    Bug("adamw_default_decay_zero", "engine/optim.py",
        "def adamw(params, *, lr: float, weight_decay: float = 0.01", "def adamw(params, *, lr: float, weight_decay: float = 0.0",
        "adamw's default weight decay is 0, not torch's 0.01"),
    Bug("warmup_in_epochs_not_steps", "engine/schedule.py",
        "round(warmup_epochs * steps_per_epoch)", "round(warmup_epochs)",
        "warmup lasts warmup_epochs batches"),
    Bug("channels_last_auto_inverted", "engine/precision.py",
        "layout = dtype is not None", "layout = dtype is None",
        "auto channels_last is on for fp32 and off for bf16"),
    Bug("monitor_ties_improve", "engine/monitor.py",
        "self.sign * (value - self.best) > self.min_delta", "self.sign * (value - self.best) >= self.min_delta",
        "an epoch equal to the best counts as an improvement (> vs >=)"),
    Bug("test_with_last_weights", "engine/fit.py",
        "session.model.load_state_dict(run.checkpoints.weights(monitor.best_epoch))",
        'session.model.load_state_dict(run.checkpoints.weights("last"))',
        "the test set is evaluated with the last checkpoint, not the best"),
    Bug("validate_on_test", "engine/fit.py",
        'val = evaluate(session.model, session.loaders["val"]', 'val = evaluate(session.model, session.loaders["test"]',
        "every epoch validates on the test split (wrong split)"),
    Bug("resume_forgets_data_rng", "engine/resume.py",
        'restore_rng_state(state["rng"], session.generator)', 'restore_rng_state(state["rng"])',
        "resume restores the global RNGs but not the data generator"),
    Bug("schedule_sized_by_val_loader", "engine/session.py",
        'steps_per_epoch=len(loaders["train"])', 'steps_per_epoch=len(loaders["val"])',
        "the schedule counts val batches per epoch"),
    Bug("data_order_ignores_seed", "engine/seed.py",
        "generator.manual_seed(seed + 1_000_003)", "generator.manual_seed(1_000_003)",
        "every run seed shuffles and augments the same way (dropped term)"),
    Bug("head_is_first_linear", "engine/finetune.py",
        "return heads[-1]", "return heads[0]",
        "fine-tuning re-initialises the first Linear instead of the head"),
    Bug("frozen_bn_keeps_training", "engine/finetune.py",
        "            module.eval()", "            module.train()",
        "frozen batch-norm layers update their running statistics"),
    Bug("summary_test_size_is_val", "engine/summary.py",
        '"test": int(splits.test_labels.size)', '"test": int(splits.val_labels.size)',
        "summary.json gives the val size as the test size (copy-paste)"),
    Bug("val_top5_from_train", "engine/summary.py",
        "val_top5=val.top5", "val_top5=train.top5",
        "the metrics row's val_top5 is the train top-5 (copy-paste)"),
    # --- models -----------------------------------------------------------------------------------
    Bug("resnet_relu_before_add", "models/resnet_cifar.py",
        "return self.act2(out + self.shortcut(x))", "return self.act2(out) + self.shortcut(x)",
        "the block's last activation comes before the residual sum"),
    Bug("resnet_no_downsampling", "models/resnet_cifar.py",
        "for s in [stride] + [1] * (blocks - 1):", "for s in [1] * blocks:",
        "ResNet stages never stride: same parameters, four times the compute"),
    Bug("resnet_init_fan_in", "models/resnet_cifar.py",
        'nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")',
        'nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")',
        "ResNet convs initialised with fan_in, not torchvision's fan_out"),
    Bug("mlp_square_input", "models/mlp.py",
        "in_features=in_chans * H * W", "in_features=in_chans * H * H",
        "the MLP's input width uses H twice (only square images work)"),
    Bug("simple_nn_fixed_relu", "models/simple_nn.py",
        'self.classifier.add_module("act3", make_activation(activation))',
        'self.classifier.add_module("act3", nn.ReLU())',
        "SimpleNN's first FC activation ignores the activation option"),
    Bug("zero_layer_size_allowed", "models/registry.py",
        "or isinstance(v, bool) or v < 1 for v in sizes", "or isinstance(v, bool) or v < 0 for v in sizes",
        "a layer size of 0 is accepted (off-by-one)"),
    Bug("probe_runs_in_train_mode", "models/layers.py",
        "    module.eval()\n    try:", "    module.train()\n    try:",
        "eval_mode trains: building a model updates its BatchNorm statistics with the probe"),
    Bug("fully_conv_always_training", "models/fully_conv.py",
        "head).train(model.training)", "head).train(True)",
        "the converted net is in train mode even when the original was in eval mode"),
    Bug("unexpected_keys_always_refused", "models/weights.py",
        "if strict and unexpected:", "if unexpected:",
        "non-strict loading still refuses unexpected keys"),
    # --- run --------------------------------------------------------------------------------------
    Bug("commit_forgets_best", "run/checkpoint.py",
        "self.prune({epoch, *keep})", "self.prune({epoch})",
        "each commit deletes the best checkpoint"),
    Bug("early_stopped_is_resumable", "run/record.py",
        'FINAL_STATUSES = ("completed", "early_stopped", "diverged")', 'FINAL_STATUSES = ("completed", "diverged")',
        "an early-stopped run may be resumed and trained further"),
    Bug("open_checks_data_json", "run/rundir.py",
        'if not (path / "config.yaml").is_file():', 'if not (path / "data.json").is_file():',
        "RunDir.open accepts a folder whose record never finished (config.yaml is written last)"),
    Bug("restored_model_in_train_mode", "run/restore.py",
        "return model.eval()", "return model",
        "restore_model returns the model in train mode"),
    Bug("restore_ignores_num_outputs", "run/restore.py",
        "outputs = data.num_outputs or len(data.classes)", "outputs = len(data.classes)",
        "a binary (one-logit) run is rebuilt with two outputs"),
]

# A second set, written after the tests that the first set's survivors led to: bugs that no test was
# written against, so its figure is the one that says how the suite does on bugs it has not seen.
FRESH = [
    # --- data -------------------------------------------------------------------------------------
    Bug("flip_upside_down", "data/augment.py",
        "x[flip] = x[flip].flip(3)", "x[flip] = x[flip].flip(2)",
        "flip_lr mirrors top-bottom (wrong axis)"),
    Bug("crop_same_offset_both_axes", "data/augment.py",
        "windows[torch.arange(N, device=x.device), :, dy, dx]", "windows[torch.arange(N, device=x.device), :, dy, dy]",
        "random_crop uses the vertical offset for both axes (copy-paste)"),
    Bug("loader_shift_by_std", "data/loader.py",
        "self.shift = 255.0 * torch.tensor(stats.mean,", "self.shift = 255.0 * torch.tensor(stats.std,",
        "inputs are centred on the std instead of the mean (copy-paste)"),
    Bug("shuffle_never_shuffles", "data/loader.py",
        "order = torch.randperm(n, generator=self.generator, device=self.device)",
        "order = torch.arange(n, device=self.device)",
        "a shuffling loader yields the images in file order"),
    Bug("stats_last_chunk_only", "data/normalize.py",
        "n, mean, m2 = merge_moments(n, mean, m2, n_b, mean_b, m2_b)", "n, mean, m2 = n_b, mean_b, m2_b",
        "the streaming statistics keep only the last chunk (merge forgotten)"),
    Bug("holdout_seed_ignored", "data/splits.py",
        "rng = np.random.default_rng(seed)", "rng = np.random.default_rng(0)",
        "data.split_seed does not change the validation split"),
    Bug("holdout_extra_to_smallest_remainder", "data/splits.py",
        "np.argsort(share - take)[::-1]", "np.argsort(share - take)",
        "largest-remainder allocation gives the extra images to the smallest remainders"),
    Bug("classes_renumbered_sorted", "data/splits.py",
        "lookup[keep] = np.arange(len(keep))", "lookup[sorted(keep)] = np.arange(len(keep))",
        "data.classes=[3,1] numbers the classes in sorted order, not the given one"),
    # --- engine -----------------------------------------------------------------------------------
    Bug("label_smoothing_dropped", "engine/losses.py",
        "F.cross_entropy(logits, targets, label_smoothing=label_smoothing)", "F.cross_entropy(logits, targets)",
        "loss.label_smoothing has no effect (dropped argument)"),
    Bug("hinge_signs_flipped", "engine/losses.py",
        "signs = targets.float() * 2 - 1", "signs = 1 - targets.float() * 2",
        "binary hinge maps class 1 to -1 (sign slip)"),
    Bug("hinge_initial_not_averaged", "engine/losses.py",
        "margin * (num_classes - 1) / num_classes", "margin * (num_classes - 1)",
        "the expected first loss of multiclass hinge forgets torch's division by C"),
    Bug("step_schedule_counts_batches", "engine/schedule.py",
        "gamma ** ((s // steps_per_epoch) // step_size)", "gamma ** (s // step_size)",
        "the step schedule decays every step_size batches instead of epochs"),
    Bug("onecycle_falls_while_rising", "engine/schedule.py",
        "start + (1 - start) * 0.5 * (1 - math.cos(math.pi * s / rise))",
        "start + (1 - start) * 0.5 * (1 + math.cos(math.pi * s / rise))",
        "one-cycle's warm-up phase falls from the peak (sign slip)"),
    Bug("warmup_start_ignored", "engine/schedule.py",
        "factor(s) * (start + (1 - start) * min(1.0, s / warmup_steps))", "factor(s) * min(1.0, s / warmup_steps)",
        "warmup always starts at lr 0, whatever warmup_start says"),
    Bug("l1_on_biases", "engine/loop.py",
        "p.requires_grad and p.dim() > 1", "p.requires_grad and p.dim() > 0",
        "the L1 penalty also covers biases and BN parameters"),
    Bug("topk_counts_kth_rank_only", "engine/metrics.py",
        "hits[:, :k].any(dim=1).sum()", "hits[:, k - 1].sum()",
        "top-k counts a hit only at rank k"),
    Bug("monitor_direction_by_acc", "engine/monitor.py",
        'self.sign = -1.0 if key.endswith("loss") else 1.0', 'self.sign = 1.0 if key.endswith("acc") else -1.0',
        "val_top5 is minimised (direction decided by the wrong suffix)"),
    Bug("early_stop_one_late", "engine/monitor.py",
        "self.stale >= self.patience", "self.stale > self.patience",
        "early stopping waits one epoch more than the patience"),
    Bug("val_nan_not_divergence", "engine/fit.py",
        "if not math.isfinite(val.loss) or not all_finite(session.model):", "if not all_finite(session.model):",
        "a non-finite validation loss is committed as an ordinary epoch"),
    Bug("finite_check_windowed_on_cpu", "engine/loop.py",
        'self.window = 1 if device.type == "cpu" else window', "self.window = window",
        "on the CPU a NaN loss is noticed up to 16 updates late"),
    Bug("first_loss_is_the_last", "engine/loop.py",
        "if first_loss is None:\n            first_loss = loss.item()", "if True:\n            first_loss = loss.item()",
        "the first-batch loss reported is the epoch's last batch"),
    Bug("resume_forgets_scheduler", "engine/resume.py",
        '    session.scheduler.load_state_dict(state["scheduler"])\n', "",
        "resume restarts the lr schedule from step 0"),
    Bug("resume_keeps_uncommitted_rows", "engine/resume.py",
        "        rows = rows[:epoch]\n", "",
        "metrics rows written after the last checkpoint survive resume and are appended to"),
    Bug("resume_prunes_best", "engine/resume.py",
        "run.checkpoints.prune({epoch, session.monitor.best_epoch})", "run.checkpoints.prune({epoch})",
        "resume deletes the best checkpoint when it is not the last"),
    Bug("rng_restore_skips_torch", "engine/seed.py",
        '    torch.set_rng_state(state["torch"])\n', "",
        "resume leaves torch's global generator (dropout masks) where the new process put it"),
    Bug("numpy_rng_position_lost", "engine/seed.py",
        '"pos": int(pos)', '"pos": 0',
        "the numpy RNG state is captured without its position"),
    # --- models -----------------------------------------------------------------------------------
    Bug("vgg_convs_unpadded", "models/vgg.py",
        "nn.Conv2d(chans, out_chans, kernel_size=3, padding=1))", "nn.Conv2d(chans, out_chans, kernel_size=3, padding=0))",
        "VGG's 3x3 convs lose their padding"),
    Bug("convnet_3x3_kernels", "models/convnet.py",
        "kernel_size=5, padding=2", "kernel_size=3, padding=1",
        "practical work's convnet built with 3x3 instead of 5x5 kernels"),
    Bug("lenet5_same_padding", "models/lenet.py",
        "kernel_size=5, padding=0,", "kernel_size=5, padding=2,",
        "LeNet-5's convs padded (the 1998 net has none)"),
    Bug("enpm_conv2_5x5", "models/enpm_open.py",
        "nn.Conv2d(c1, c2, kernel_size=3, padding=1)", "nn.Conv2d(c1, c2, kernel_size=5, padding=2)",
        "ENPM 703's second conv is 5x5, not 3x3"),
    Bug("alexnet_small_pool_stride_1", "models/alexnet_small.py",
        'nn.MaxPool2d(2))', 'nn.MaxPool2d(2, stride=1))',
        "alexnet_small's pools do not halve the image"),
    # --- run --------------------------------------------------------------------------------------
    Bug("checkpoint_epoch_unchecked", "run/checkpoint.py",
        'if header.get("schema") != SCHEMA or header.get("epoch") != epoch:', 'if header.get("schema") != SCHEMA:',
        "a checkpoint under another epoch's name is loaded as that epoch"),
    Bug("best_resolves_to_latest", "run/checkpoint.py",
        'return self.load(latest).meta.get("best_epoch") or None', "return latest",
        "'best' loads the last checkpoint"),
    Bug("latest_is_oldest", "run/checkpoint.py",
        "return epochs[-1] if epochs else None", "return epochs[0] if epochs else None",
        "the latest checkpoint is taken to be the oldest on disk"),
    Bug("nan_in_state_unencoded", "run/checkpoint.py",
        'float(x) if math.isfinite(x) else {"$float": repr(float(x))}', "float(x)",
        "a NaN or inf in the trainer state is written as bare JSON"),
    Bug("record_config_first", "run/rundir.py",
        '        atomic_write_json(self.path / "data.json", to_dict(data))\n'
        '        atomic_write_text(self.path / "model.txt", model_text)\n'
        '        atomic_write_text(self.path / "config.yaml", config_yaml)\n',
        '        atomic_write_text(self.path / "config.yaml", config_yaml)\n'
        '        atomic_write_json(self.path / "data.json", to_dict(data))\n'
        '        atomic_write_text(self.path / "model.txt", model_text)\n',
        "config.yaml, the mark of a whole record, is written first"),
    Bug("run_suffix_off_by_one", "run/rundir.py",
        'f"{stem}-{attempt}"', 'f"{stem}-{attempt - 1}"',
        "a second run in the same second is named -1 instead of -2"),
]
SETS = {"first": BUGS, "fresh": FRESH, "all": BUGS + FRESH}


def apply(bug: Bug, root: Path) -> str:
    """Write the bug into the copy; returns the original text. Fails loudly unless ``old`` is there once."""
    path = root / "src" / "cnnlab" / bug.file
    text = path.read_text()
    count = text.count(bug.old)
    if count != 1:
        sys.exit(f"seeded_bugs: {bug.name}: {bug.old!r} occurs {count} times in src/cnnlab/{bug.file}, not once")
    write_source(path, text.replace(bug.old, bug.new))
    return text


def write_source(path: Path, text: str) -> None:
    path.write_text(text)
    for cached in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):  # never run a stale mutant
        cached.unlink()


def test_order(root: Path) -> list[str]:
    """Every test folder and top-level test file, the core's unit tests first and cli last."""
    entries = sorted(p.name for p in (root / "tests").iterdir()
                     if (p.is_dir() and p.name != "__pycache__") or (p.name.startswith("test_") and p.suffix == ".py"))
    rank = {name: i for i, name in enumerate(FIRST)}
    return [f"tests/{n}" for n in sorted(entries, key=lambda n: (rank.get(n, len(FIRST)), n == "cli", n))]


def run_suite(root: Path, extra: list[str]) -> tuple[bool, float, str]:
    """(passed, seconds, the first failing test or 'timeout') of the fast suite in the copy."""
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, *PYTEST, *extra], cwd=root, env=env, capture_output=True,
                              text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, time.perf_counter() - start, "timeout"
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.MULTILINE)
    tail = done.stdout.strip().splitlines()[-1:] or [done.stderr.strip()[-200:]]
    return done.returncode == 0, time.perf_counter() - start, failed.group(1) if failed else tail[0]


def make_copy(workdir: Path) -> Path:
    root = workdir / "repo"
    root.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")
    for name in COPIED:
        source = REPO / name
        if source.is_symlink():
            os.symlink(os.readlink(source), root / name)
        elif source.is_dir():
            shutil.copytree(source, root / name, symlinks=True, ignore=skip)
        elif source.is_file():
            shutil.copy2(source, root / name)
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    imported = subprocess.run([sys.executable, "-c", "import cnnlab; print(cnnlab.__file__)"], env=env,
                              capture_output=True, text=True, check=True).stdout.strip()
    print(f"cnnlab imported from {imported}", flush=True)
    if not Path(imported).resolve().is_relative_to(root.resolve()):
        sys.exit("seeded_bugs: the copy's cnnlab is not the one imported; check PYTHONPATH and the editable install")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), default="all",
                        help="first: the bugs the tests were then improved against; fresh: the later set (default all)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these bugs")
    parser.add_argument("--list", action="store_true", help="list the bugs and exit")
    parser.add_argument("--pytest-args", default="", help='more pytest arguments, e.g. "--ignore=tests/engine/test_kill.py"')
    parser.add_argument("--skip-baseline", action="store_true", help="do not first check that the unchanged copy passes")
    args = parser.parse_args(argv)
    pool = SETS[args.set]
    names = {b.name for b in pool}
    if len(names) != len(pool):
        sys.exit("seeded_bugs: two bugs share a name")
    if args.list:
        for b in pool:
            print(f"{b.name:32} {b.file:24} {b.why}")
        return 0
    unknown = sorted(set(args.only or ()) - names)
    if unknown:
        sys.exit(f"seeded_bugs: unknown bug {', '.join(unknown)} (see --list)")
    bugs = [b for b in pool if not args.only or b.name in args.only]
    with tempfile.TemporaryDirectory(prefix="cnnlab-bugs-") as workdir:
        root = make_copy(Path(workdir))
        extra = shlex.split(args.pytest_args) + test_order(root)
        for bug in bugs:  # every bug applies to the pristine copy before the hour of runs starts
            write_source(root / "src" / "cnnlab" / bug.file, apply(bug, root))
        if not args.skip_baseline:
            passed, seconds, what = run_suite(root, extra)
            print(f"baseline: {'passed' if passed else 'FAILED'} in {seconds:.0f}s ({what})", flush=True)
            if not passed:
                sys.exit("seeded_bugs: the unchanged copy fails; fix that first")
        results = []
        for i, bug in enumerate(bugs, 1):
            original = apply(bug, root)
            try:
                passed, seconds, what = run_suite(root, extra)
            finally:
                write_source(root / "src" / "cnnlab" / bug.file, original)
            results.append((bug, not passed, seconds, what))
            print(f"[{i:2}/{len(bugs)}] {'caught  ' if not passed else 'SURVIVED'} {seconds:5.0f}s  "
                  f"{bug.name:32} {what}", flush=True)
    print(f"\n{'bug':32} {'file':24} {'result':8} {'time':>6}  caught by")
    for bug, caught, seconds, what in results:
        print(f"{bug.name:32} {bug.file:24} {'caught' if caught else 'SURVIVED':8} {seconds:5.0f}s  "
              f"{what if caught else bug.why}")
    caught = sum(r[1] for r in results)
    print(f"\ncaught {caught} of {len(results)} ({100 * caught / max(len(results), 1):.0f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
