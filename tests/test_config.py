"""One source of configuration truth, and its check at start.

The config files hold every value (and import only ml_collections); a flag that remains is
an alias of a field that an explicit --config.<field> beats; a bad value stops a script with
exit status 2 naming the field, before anything is written.
"""

import ast
import json
import math
import os
import pathlib
import runpy
import subprocess
import sys

import pytest

from meta_unsup_rules.configs import local, oja, paper, tiny
from meta_unsup_rules.util.config_check import ConfigError, Section

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = {"paper": paper, "local": local, "tiny": tiny, "oja": oja}


def _python(*args, timeout=300):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  return subprocess.run(
    [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
  )


def _raises(field, fn, *args):
  with pytest.raises(ConfigError) as info:
    fn(*args)
  assert info.value.field == field, info.value
  return info.value


# ----------------------------------------------------------------------------- Section helpers


def _s(**values):
  return Section(values, "sec")


def test_int_at_least_bound_passes_just_below_fails():
  assert _s(n=3).int_at_least("n", 3) == 3
  err = _raises("sec.n", _s(n=2).int_at_least, "n", 3)
  assert err.value == 2 and ">= 3" in err.allowed and "sec.n = 2" in str(err)
  _raises("sec.n", _s(n=3.0).int_at_least, "n", 1)  # a float is not an integer
  _raises("sec.n", _s(n=True).int_at_least, "n", 0)  # nor is a bool


def test_number_closed_and_open_bounds():
  assert _s(x=0.0).number("x", lo=0.0) == 0.0
  _raises("sec.x", _s(x=-1e-12).number, "x", 0.0)
  _raises("sec.x", _s(x=0.0).number, "x", 0.0, None, True)  # lo_open
  assert _s(x=1.0).number("x", hi=1.0) == 1.0
  _raises("sec.x", _s(x=1.0 + 1e-12).number, "x", None, 1.0)
  _raises("sec.x", _s(x=1.0).number, "x", None, 1.0, False, True)  # hi_open
  assert _s(x=0.999).number("x", lo=0.0, hi=1.0, lo_open=True, hi_open=True) == 0.999
  for bad in (math.nan, math.inf, "1.0", None):
    _raises("sec.x", _s(x=bad).number, "x")


def test_positive_one_of_boolean():
  assert _s(x=1e-300).positive("x") == 1e-300
  _raises("sec.x", _s(x=0).positive, "x")
  assert _s(m="a").one_of("m", ("a", "b")) == "a"
  _raises("sec.m", _s(m="c").one_of, "m", ("a", "b"))
  assert _s(b=False).boolean("b") is False
  _raises("sec.b", _s(b=0).boolean, "b")


def test_sequences_ints_numbers_weights_subset():
  assert _s(v=(1, 2)).ints("v", 1, increasing=True) == (1, 2)
  _raises("sec.v", _s(v=(0,)).ints, "v", 1)
  _raises("sec.v", _s(v=()).ints, "v", 1)
  _raises("sec.v", _s(v=(2, 2)).ints, "v", 1, True)
  assert _s(v=(0.5, 1.0)).numbers("v", lo=0.0, lo_open=True, hi=1.0) == (0.5, 1.0)
  _raises("sec.v", _s(v=(0.5, math.nan)).numbers, "v")
  _raises("sec.v", _s(v=("(nan,1e-4)",)).numbers, "v")  # how --config parses "(nan,1e-4)"
  assert _s(v=()).numbers("v", min_len=0) == ()
  assert _s(w=(0.0, 1.0)).weights("w", length=2) == (0.0, 1.0)
  _raises("sec.w", _s(w=(0.0, 0.0)).weights, "w")
  _raises("sec.w", _s(w=(1.0,)).weights, "w", 2)
  _raises("sec.w", _s(w=(-1.0, 2.0)).weights, "w")
  assert _s(m=("a",)).subset("m", ("a", "b")) == ("a",)
  for bad in ((), ("a", "a"), ("c",), "a"):
    _raises("sec.m", _s(m=bad).subset, "m", ("a", "b"))


def test_ordered_names_both_fields():
  _s(lo=2, hi=2).ordered("lo", "hi")
  err = _raises("sec.lo", _s(lo=3, hi=2).ordered, "lo", "hi")
  assert "sec.hi = 2" in err.allowed


# ----------------------------------------------------------------------------- the config files


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_shipped_config_validates(name):
  from meta_unsup_rules.scripts import config_args

  cfg = CONFIGS[name].get_config()
  config_args.check_config(cfg, config_args.META_TRAIN_SECTIONS)
  config_args.check_config(cfg, config_args.EVALUATION_SECTIONS)


def test_the_ojac_long_run_recipe_is_the_config_of_that_run():
  recipe_module = runpy.run_path(str(ROOT / "experiments" / "oja_variant" / "ojac_long_run_recipe.py"))
  recipe = json.loads(json.dumps(recipe_module["get_config"]().to_dict()))  # tuples → lists, as config.json
  run = json.loads((ROOT / "experiments" / "earlier" / "runs" / "ojac_long_run" / "config.json").read_text())
  # Fields added after the run: the recipe must hold the value that reproduces what the run did.
  from meta_unsup_rules.util import config_compat

  assert recipe["learner"].pop("require_clean_start") is True
  for path, legacy in config_compat.LEGACY_VALUES.items():
    section, field = path.split(".", 1)
    if field in recipe.get(section, {}) and field not in run.get(section, {}):
      value = recipe[section].pop(field)
      assert value == (list(legacy) if isinstance(legacy, tuple) else legacy), path
  recipe["evaluation"]["methods"].remove("raw_input")  # evaluation only: not part of the run
  # Removed since: faults are injected by tests (tests/faulty_worker.py), not by a config field.
  assert run["workers"].pop("fault_injection") == ""
  assert recipe == run


def test_config_files_import_only_ml_collections_and_each_other():
  for path in sorted((ROOT / "configs").glob("*.py")):
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.Import):
        assert [a.name for a in node.names] == ["ml_collections"], path
      elif isinstance(node, ast.ImportFrom):
        assert node.module == "meta_unsup_rules.configs", (path, node.module)


def test_paper_methods_are_every_method_in_table_order():
  from meta_unsup_rules.evaluation import runner

  assert tuple(paper.get_config().evaluation.methods) == runner.METHODS


def test_code_keeps_no_second_copy_of_the_defaults():
  from meta_unsup_rules import tasks
  from meta_unsup_rules.base_models import baselines as bl
  from meta_unsup_rules.evaluation import protocols, runner
  from meta_unsup_rules.tasks import meta_train

  for module, name in (
    (protocols, "default_evaluation_config"),
    (bl, "default_baseline_config"),
    (runner, "config_with_defaults"),
    (meta_train, "default_task_config"),
    (meta_train, "_DEFAULTS"),
    (tasks, "default_task_config"),
  ):
    assert not hasattr(module, name), (module.__name__, name)


# ----------------------------------------------------------------------------- section validators


def test_learner_validator():
  from meta_unsup_rules.distributed import settings

  cfg = paper.get_config().learner
  settings.validate_learner(cfg)
  cfg.learning_rates = (math.nan, 1e-4, 2e-5)
  _raises("learner.learning_rates", settings.validate_learner, cfg)
  cfg.learning_rates = (3e-4, 1e-4)  # one fewer than boundaries + 1
  err = _raises("learner.learning_rates", settings.validate_learner, cfg)
  assert "lr_boundaries" in err.allowed
  cfg = paper.get_config().learner
  cfg.lr_boundaries = (0.75, 0.5)
  _raises("learner.lr_boundaries", settings.validate_learner, cfg)
  cfg.lr_boundaries = (0.5, 1.0)  # a boundary at the end is no boundary
  _raises("learner.lr_boundaries", settings.validate_learner, cfg)
  for field, bad in (
    ("batch_size", 0),
    ("num_updates", 0),
    ("clip_norm", 0.0),
    ("adam_b2", 1.0),
    ("max_staleness", -1),
    ("checkpoint_every", 0),
    ("keep_checkpoints", 0),
    ("snapshot_every", -1),
  ):
    cfg = paper.get_config().learner
    cfg[field] = bad
    _raises(f"learner.{field}", settings.validate_learner, cfg)


def test_workers_validator():
  from meta_unsup_rules.distributed import settings

  for field, bad in (
    ("num_workers", -1),
    ("mode", "threads"),
    ("cpus_per_worker", 0),
    ("result_timeout_sec", 0.0),
    ("max_consecutive_errors", -1),
    ("tasks_per_call", 0),
  ):
    cfg = paper.get_config()
    settings.validate_workers(cfg)
    cfg.workers[field] = bad
    _raises(f"workers.{field}", settings.validate_workers, cfg)


def test_task_validator():
  from meta_unsup_rules.tasks import meta_train

  meta_train.validate_config(paper.get_config().task)
  for field, bad in (
    ("datasets", ()),
    ("datasets", ("nosuch",)),
    ("dataset_weights", (0.0,) * 3),
    ("dataset_weights", (1.0, 1.0)),
    ("image_size", 1),
    ("num_classes_choices", (1,)),
    ("depth_min", 6),
    ("width_min", 0),
    ("width_min", 513),
    ("width_grid", -1),
    ("labelled_fraction", 1.0),
    ("labelled_fraction", 0.0),
    ("max_noise", -0.1),
    ("resize_method", "nearest"),
  ):
    cfg = paper.get_config().task
    cfg[field] = bad
    _raises(f"task.{field}", meta_train.validate_config, cfg)


def test_evaluation_and_baselines_validators():
  from meta_unsup_rules.base_models.baselines import settings as baseline_settings
  from meta_unsup_rules.evaluation import config_section as settings

  settings.validate_config(paper.get_config().evaluation)
  for field, bad in (
    ("protocol", "zero_shot"),
    ("support_per_class", 0),
    ("max_test", 0),
    ("inner_steps", -1),
    ("eval_every", -1),
    ("seeds", 0),
    ("methods", ()),
    ("methods", ("telepathy",)),
    ("n_way", 0),
    ("label_fractions", (0.1, 0.1)),
    ("label_fractions", (0.0,)),
    ("label_fractions", (1.5,)),
    ("probe_max_train", 0),
    ("test_chunk", 0),
    ("logistic_c", 0.0),
    ("task", "imagenet"),
    ("theta", ""),
  ):
    cfg = paper.get_config().evaluation
    cfg[field] = bad
    _raises(f"evaluation.{field}", settings.validate_config, cfg)
  baseline_settings.validate_config(paper.get_config().baselines)
  for section, field, bad in (
    ("vae", "learning_rate", 0.0),
    ("vae", "likelihood", "poisson"),
    ("contrastive", "dropout_rate", 1.0),
    ("protonet", "n_way", 1),
    ("supervised", "check_every", 0),
  ):
    cfg = paper.get_config().baselines
    cfg[section][field] = bad
    _raises(f"baselines.{section}.{field}", baseline_settings.validate_config, cfg)


# ----------------------------------------------------------------------------- scripts at start


@pytest.mark.parametrize(
  "override,field",
  [
    ("--config.unroll.lengths=(0,)", "unroll.lengths"),
    ("--config.rule.inner_lr=-1", "rule.inner_lr"),
    ("--config.learner.learning_rates=(nan,1e-4,2e-5)", "learner.learning_rates"),
    ("--config.task.datasets=('nosuch',)", "task.datasets"),
    ("--config.unroll.horizon_min=9", "unroll.horizon_min"),  # tiny: horizon_max = 8
    ("--config.task.dataset_weights=(0.0,)", "task.dataset_weights"),
    ("--config.task.width_min=0", "task.width_min"),
    ("--config.base_model.hidden_widths=(0,)", "base_model.hidden_widths"),
  ],
)
def test_meta_train_bad_config_exits_2_before_the_workdir_exists(tmp_path, override, field):
  workdir = tmp_path / "run"
  proc = _python(
    "-m",
    "scripts.meta_train",
    "--config=configs/tiny.py",
    f"--workdir={workdir}",
    "--no_progress",
    override,
    timeout=120,
  )
  assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
  assert f"config field {field} = " in proc.stderr and "expected" in proc.stderr, proc.stderr
  assert not workdir.exists()


def _evaluate(tmp_path, *args):
  out = tmp_path / "eval"
  proc = _python(
    "-m",
    "scripts.evaluate",
    "--config=configs/tiny.py",
    "--task=two_moons",
    "--inner_steps=0",
    "--seeds=1",
    "--methods=random_init",
    "--max_test=100",
    f"--out_dir={out}",
    *args,
    timeout=300,
  )
  return proc, out


@pytest.mark.parametrize(
  "args,support",
  [
    (("--config.evaluation.support_per_class=5",), 5),  # the override is honoured
    (("--support_per_class=7",), 7),  # the alias flag works
    (("--support_per_class=7", "--config.evaluation.support_per_class=5"), 5),  # config wins
  ],
)
def test_evaluate_support_per_class_from_config_or_alias(tmp_path, args, support):
  proc, out = _evaluate(tmp_path, *args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads((out / "results.json").read_text())
  assert result["config"]["evaluation"]["support_per_class"] == support
  assert result["num_test"] == 100  # the --max_test alias
  # two_moons has 2 classes: the readouts were fitted on 2 * support labelled examples.
  assert result["per_seed_info"]["0"]["num_labels"]["ridge"] == 2 * support
  assert ("--support_per_class is ignored" in proc.stderr) == (len(args) == 2)


def test_evaluate_bad_config_exits_2_and_writes_nothing(tmp_path):
  proc, out = _evaluate(tmp_path, "--config.evaluation.support_per_class=0")
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "config field evaluation.support_per_class = 0" in proc.stderr
  assert not out.exists()


_ALIASES_OF = """
import sys
from absl import flags
from meta_unsup_rules.scripts import config_args
from meta_unsup_rules.scripts import {script} as script
flags.FLAGS(sys.argv)
cfg = config_args.apply_aliases(script._CONFIG.value, {aliases})
print({expr})
"""


def test_episodic_alias_sets_four_fields_and_an_explicit_field_wins():
  code = _ALIASES_OF.format(
    script="evaluate",
    aliases="config_args.EVALUATION_ALIASES",
    expr="[cfg.evaluation[k] for k in ('n_way', 'k_shot', 'n_query', 'episodes')]",
  )
  proc = _python("-c", code, "--episodic=3,4,5,6", "--config.evaluation.k_shot=9", timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.strip().splitlines()[-1] == "[3, 9, 5, 6]"
  assert "--episodic is ignored for evaluation.k_shot" in proc.stderr


def test_ray_address_alias_and_explicit_field():
  code = _ALIASES_OF.format(
    script="meta_train", aliases="('ray_address',)", expr="repr(cfg.workers.ray_address)"
  )
  proc = _python("-c", code, "--ray_address=auto", timeout=120)
  assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1] == "'auto'", proc.stderr
  proc = _python("-c", code, "--ray_address=auto", "--config.workers.ray_address=head:6379", timeout=120)
  assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1] == "'head:6379'", proc.stderr
  proc = _python("-c", code, timeout=120)  # no alias: the config file's value
  assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1] == "''", proc.stderr
