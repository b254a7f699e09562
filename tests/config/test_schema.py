"""What the schema refuses before anything trains: names, ranges, run names, empty recipes."""

import typing

import pytest
import yaml

from cnnlab.config import config_from_dict, dump_yaml, load_recipe
from cnnlab.config.schema import LossName, NormalizeName, OptimizerName, ScheduleName, TrainConfig
from cnnlab.errors import CnnlabError


def refused(*words: str) -> str:
    with pytest.raises(CnnlabError) as err:
        load_recipe(None, list(words))
    message = str(err.value)
    assert "\n" not in message
    return message


# --- names: Literals in the schema, equal to the engine's registries ---------------------------

def literal(tp) -> set[str]:
    return set(typing.get_args(tp))


def test_name_literals_equal_the_engine_registries():
    from cnnlab.engine.losses import LOSSES
    from cnnlab.engine.optim import OPTIMIZERS
    from cnnlab.engine.precision import PRECISIONS
    from cnnlab.engine.schedule import SCHEDULES

    hints = typing.get_type_hints(TrainConfig)
    assert literal(OptimizerName) == set(OPTIMIZERS.names())
    assert literal(ScheduleName) == set(SCHEDULES.names())
    assert literal(LossName) == set(LOSSES.names())
    assert literal(hints["precision"]) == set(PRECISIONS)


def test_normalize_names_equal_the_data_schemes():
    from cnnlab.data.normalize import SCHEMES

    assert typing.get_args(NormalizeName) == SCHEMES  # the same names, in the same order


def test_every_monitor_the_schema_allows_is_one_the_engine_tracks():
    from cnnlab.engine.monitor import Monitor

    allowed = literal(typing.get_type_hints(TrainConfig)["monitor"])
    assert allowed == {"val_acc", "val_loss", "val_top5"}
    for key in allowed:
        Monitor(key, patience=None, min_delta=0.0)


@pytest.mark.parametrize("word, message", [
    ("optim.name=adamm", "unknown optim.name 'adamm'; did you mean 'adam'? "
                         "(valid: adagrad, adam, adamw, rmsprop, sgd)"),
    ("schedule.name=cosin", "unknown schedule.name 'cosin'; did you mean 'cosine'?"),
    ("loss.name=crossentropy", "unknown loss.name 'crossentropy'; did you mean 'cross_entropy'?"),
    ("train.precision=bf61", "unknown train.precision 'bf61'; did you mean 'bf16'? (valid: auto, bf16, fp16, fp32)"),
    ("train.monitor=val_accuracy", "unknown train.monitor 'val_accuracy'; did you mean 'val_acc'?"),
    ("train.precision=16", "unknown train.precision '16'"),
    ("train.channels_last=maybe", "'train.channels_last' must be one of auto, true, false, got 'maybe'"),
    ("train.channels_last=tru", "got 'tru'; did you mean 'true'?"),
    ("train.device=gpu", "'train.device' must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("train.device=cuda:x", "'train.device' must be auto, cpu, cuda or cuda:N, got 'cuda:x'"),
])
def test_a_bad_name_lists_the_valid_ones(word, message):
    got = refused(word)
    assert got.startswith(f"override '{word}': ") and message in got


def test_channels_last_takes_yaml_booleans_and_auto():
    assert load_recipe(None, ["train.channels_last=true"]).train.channels_last is True
    assert load_recipe(None, ["train.channels_last=false"]).train.channels_last is False
    assert load_recipe(None, []).train.channels_last == "auto"
    config = load_recipe(None, ["train.channels_last=true", "train.device=cuda:1", "train.precision=fp32"])
    assert config_from_dict(yaml.safe_load(dump_yaml(config))) == config


@pytest.mark.parametrize("word, message", [
    ("train.channels_last='true'", "must be one of auto, true, false, got 'true'; write true without quotes"),
    ("data.normalize='False'", "must be one of none, channel, pixel, zca, imagenet, fixed, true, false, got 'False'; "
                               "write false without quotes"),
])
def test_a_quoted_boolean_says_to_drop_the_quotes(word, message):
    assert refused(word).endswith(message)


def test_the_engine_accepts_what_the_schema_gives_it():
    from cnnlab.engine.precision import candidate_settings

    for word, layouts in [("true", [True]), ("false", [False]), ("auto", [True, False])]:  # auto: both, timed
        train = load_recipe(None, [f"train.channels_last={word}", "train.precision=fp32", "train.device=cpu"]).train
        offered = candidate_settings(train.device, train.precision, train.channels_last, train.compile)
        assert [c.channels_last for c in offered] == layouts


# --- ranges: Annotated[..., Range(...)] beside each field -------------------------------------

@pytest.mark.parametrize("word, message", [
    ("data.batch_size=0", "'data.batch_size' must be >= 1, got 0"),
    ("data.batch_size=-5", "'data.batch_size' must be >= 1, got -5"),
    ("data.eval_batch_size=0", "'data.eval_batch_size' must be >= 1, got 0"),
    ("train.epochs=0", "'train.epochs' must be >= 1, got 0"),
    ("train.threads=0", "'train.threads' must be >= 1, got 0"),
    ("data.train_limit=0", "'data.train_limit' must be >= 1, got 0"),
    ("data.val_size=-1", "'data.val_size' must be > 0, got -1"),
    ("data.val_size=0", "'data.val_size' must be > 0, got 0"),
    ("train.early_stopping.patience=0", "'train.early_stopping.patience' must be >= 1, got 0"),
    ("train.early_stopping.min_delta=-0.1", "'train.early_stopping.min_delta' must be >= 0, got -0.1"),
    ("optim.lr=-1", "'optim.lr' must be > 0, got -1"),
    ("optim.lr=0", "'optim.lr' must be > 0, got 0"),
    ("optim.lr=.nan", "'optim.lr' must be a finite number, got nan"),
    ("optim.lr=inf", "'optim.lr' must be a finite number, got inf"),
    ("optim.weight_decay=-5e-4", "'optim.weight_decay' must be >= 0, got -0.0005"),
    ("optim.l1=-1", "'optim.l1' must be >= 0, got -1"),
    ("optim.momentum=1", "'optim.momentum' must be in [0, 1), got 1"),
    ("optim.momentum=-0.1", "'optim.momentum' must be in [0, 1), got -0.1"),
    ("optim.betas=[0.9, 1.0]", "'optim.betas[1]' must be in [0, 1), got 1.0"),
    ("optim.alpha=1", "'optim.alpha' must be in [0, 1), got 1"),
    ("optim.eps=0", "'optim.eps' must be > 0, got 0"),
    ("loss.label_smoothing=1", "'loss.label_smoothing' must be in [0, 1), got 1"),
    ("loss.label_smoothing=-0.1", "'loss.label_smoothing' must be in [0, 1), got -0.1"),
    ("loss.margin=0", "'loss.margin' must be > 0, got 0"),
    ("schedule.step_size=0", "'schedule.step_size' must be >= 1, got 0"),
    ("schedule.gamma=0", "'schedule.gamma' must be in (0, 1], got 0"),
    ("schedule.pct_start=1.5", "'schedule.pct_start' must be in [0, 1], got 1.5"),
    ("schedule.min_lr=-0.1", "'schedule.min_lr' must be in [0, 1], got -0.1"),
    ("schedule.div_factor=0.5", "'schedule.div_factor' must be >= 1, got 0.5"),
    ("schedule.warmup_epochs=-1", "'schedule.warmup_epochs' must be >= 0, got -1"),
    ("schedule.warmup_start=2", "'schedule.warmup_start' must be in [0, 1], got 2"),
    ("seed=-1", "'seed' must be in [0, 4294967295], got -1"),
    ("data.split_seed=-1", "'data.split_seed' must be in [0, 4294967295], got -1"),
])
def test_a_value_out_of_range_names_key_value_and_range(word, message):
    got = refused(word)
    assert got == f"override '{word}': {message}"


@pytest.mark.parametrize("word, value", [
    ("optim.momentum=0", 0), ("loss.label_smoothing=0", 0), ("data.val_size=1", 1), ("seed=0", 0),
    ("optim.lr=1e-6", 1e-6), ("schedule.pct_start=1", 1), ("data.batch_size=1", 1),
])
def test_the_bounds_themselves_are_allowed_where_the_range_includes_them(word, value):
    key, _ = word.split("=")
    config = load_recipe(None, [word])
    section, _, leaf = key.rpartition(".")
    node = config
    for part in filter(None, section.split(".")):
        node = getattr(node, part)
    assert getattr(node, leaf) == value


def test_range_errors_point_at_the_recipe_file_when_the_file_has_them(tmp_path):
    (tmp_path / "r.yaml").write_text("data:\n  batch_size: 0\n")
    with pytest.raises(CnnlabError, match=r"^.*r\.yaml: 'data.batch_size' must be >= 1, got 0$"):
        load_recipe(tmp_path / "r.yaml")


# --- the run name names a folder under output_dir --------------------------------------------

@pytest.mark.parametrize("name", ["../x", "a/b/c", ".", "..", "", "-x", "a b", "x\\y", "é" * 3, "n" * 101])
def test_a_run_name_stays_one_folder_under_output_dir(name):
    got = refused(f"name={name!r}" if name else "name=''")
    assert "'name' must be made of letters, digits, '.', '_' and '-'" in got


@pytest.mark.parametrize("name", ["quick", "fmnist_pretrain_0to4", "lr-0.05.b2", "A1", "n" * 100])
def test_ordinary_run_names_pass(name):
    assert load_recipe(None, [f"name={name}"]).name == name


# --- empty recipes ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n# and another\n"])
def test_an_empty_recipe_is_refused(tmp_path, text):
    (tmp_path / "empty.yaml").write_text(text)
    with pytest.raises(CnnlabError, match=r"recipe .*empty\.yaml has no keys \(it is empty or only comments\)"):
        load_recipe(tmp_path / "empty.yaml")


def test_an_explicit_empty_mapping_trains_the_defaults(tmp_path):
    (tmp_path / "defaults.yaml").write_text("{}  # every default\n")
    assert load_recipe(tmp_path / "defaults.yaml") == load_recipe(None)


def test_a_recipe_that_is_not_text_is_one_line(tmp_path):
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00name: x")
    with pytest.raises(CnnlabError, match="cannot read recipe .*binary.yaml"):
        load_recipe(tmp_path / "binary.yaml")


# --- model options: dropout is checked by the model registry ---------------------------------

def models_with_dropout() -> list[str]:
    from cnnlab.models.registry import MODELS

    return [name for name in MODELS.names() if "dropout" in MODELS.get(name).options()]


def test_models_with_dropout_include_the_labs_nets():
    assert {"convnet_dropout", "simplenet_dropout", "vgg_mini", "mlp"} <= set(models_with_dropout())


@pytest.mark.parametrize("value", [1.0, 1.5, -0.1])
def test_every_model_refuses_a_dropout_outside_0_1(value):
    from cnnlab.models.registry import build_model

    for name in models_with_dropout():
        with pytest.raises(CnnlabError, match=rf"model '{name}' option 'dropout' must be in \[0, 1\), got {value}"):
            build_model(name, dropout=value)
