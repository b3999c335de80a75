"""One installed name, meta_unsup_rules: a user's own `util`, `scripts` or `distributed` (Dask's) beside it
changes nothing; the console commands, and the configs and released θs as package data, work from any
directory (README Install)."""

import os
import pathlib
import subprocess
import sys
import tomllib
import venv
import zipfile

import pytest

from meta_unsup_rules import learned_update
from meta_unsup_rules.learned_update import api, releases
from meta_unsup_rules.scripts import config_args

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
COMMANDS = PYPROJECT["project"]["scripts"]
# What the project imports and one command's help, in a process started elsewhere.
_PROBE = (
  "from meta_unsup_rules.learned_update import api\n"
  "rule = api.load_rule('ojac_hand_clean')\n"
  "print('releases', ','.join(api.release_names()))\n"
  "print('rule', rule.path.name, rule.batch_size)\n"
)


def _pip_failed_offline(proc) -> bool:
  text = (proc.stdout + proc.stderr).lower()
  return any(
    s in text
    for s in ("connection", "network", "temporary failure in name resolution", "no matching distribution")
  )


# ----------------------------------------------------------------------- the console commands


def test_every_console_command_names_a_run_function_of_scripts():
  assert set(COMMANDS) == {
    "meta-unsup-train",
    "meta-unsup-evaluate",
    "meta-unsup-sweep",
    "meta-unsup-export",
    "meta-unsup-demo",
    "meta-unsup-data",
    "meta-unsup-benchmark",
    "meta-unsup-plot",
    "meta-unsup-validate",
  }
  for command, target in COMMANDS.items():
    module, _, function = target.partition(":")
    assert module.startswith("meta_unsup_rules.scripts.") and function == "run", (command, target)
    source = (ROOT / "scripts" / f"{module.rsplit('.', 1)[1]}.py").read_text()
    assert "\ndef run():\n" in source and '\nif __name__ == "__main__":\n  cli.run(main)\n' in source, command


# ------------------------------------------------- configs and released θs from any directory


def test_a_bare_config_name_resolves_to_the_packages_config_from_any_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  local = str(config_args.CONFIGS_DIR / "local.py")
  assert config_args.resolve_config_file("local") == local
  assert config_args.resolve_config_file("local.py") == local
  assert config_args.resolve_config_file("configs/local.py") == local  # the checkout's spelling, elsewhere
  assert config_args.resolve_config_file("tiny:arg") == str(config_args.CONFIGS_DIR / "tiny.py") + ":arg"
  # A path that exists is that path; a name that is no config stays as given (ml_collections says why).
  (tmp_path / "local.py").write_text("")
  assert config_args.resolve_config_file("local.py") == "local.py"
  assert config_args.resolve_config_file("nosuch") == "nosuch"
  assert config_args.resolve_config_file("sub/local") == "sub/local"


def test_config_flag_takes_a_bare_name_from_another_directory(tmp_path):
  code = (
    "import sys\nfrom absl import flags\nfrom meta_unsup_rules.scripts import config_args, evaluate\n"
    "flags.FLAGS(config_args.resolve_config_arguments(sys.argv))  # as the commands' run() parses\n"
    "print(evaluate._CONFIG.value.seed, flags.FLAGS['config'].config_filename)\n"
  )
  proc = subprocess.run(
    [sys.executable, "-c", code, "--config=tiny", "--config.seed=7"],
    cwd=tmp_path,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  seed, filename = proc.stdout.split()[-2:]
  assert seed == "7" and pathlib.Path(filename) == config_args.CONFIGS_DIR / "tiny.py"


def test_a_release_name_resolves_from_any_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert set(api.release_names()) >= {"ojac_clean_u50", "ojac_hand_clean", "paper_track_u1200"}
  for name in api.release_names():
    assert releases.export_dir(name) == releases.RELEASES_DIR / name
    theta, cfg, summary = learned_update.load_theta(name)  # what --theta=<name> loads
    assert theta and "rule" in cfg and summary is not None
  # An export folder of that name in the working directory is a path, and wins.
  (tmp_path / "ojac_hand_clean").mkdir()
  (tmp_path / "ojac_hand_clean" / "theta.npz").write_bytes(b"")
  assert releases.export_dir("ojac_hand_clean") == pathlib.Path("ojac_hand_clean")
  with pytest.raises(learned_update.ExportError, match="not found"):
    learned_update.load_theta("nosuch_release")


# ------------------------------------------------------------ a user's packages of the same names


def test_user_packages_named_like_the_folders_change_nothing(tmp_path):
  user = tmp_path / "user"
  for name in ("util", "scripts", "distributed", "tasks", "configs"):
    (user / name).mkdir(parents=True)
    (user / name / "__init__.py").write_text(f"WHOSE = 'user {name}'\n")
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  # The user's folder first; the checkout last (a fresh clone without an editable install).
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(user), str(ROOT)]))
  probe = (
    _PROBE
    + "import util, scripts, distributed\nprint('user', util.WHOSE, scripts.WHOSE, distributed.WHOSE)\n"
  )
  proc = subprocess.run(
    [sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "releases ojac_clean_u50,ojac_hand_clean,paper_track_u1200" in proc.stdout
  assert "rule ojac_hand_clean" in proc.stdout
  assert "user user util user scripts user distributed" in proc.stdout
  # A console command (its wrapper does `sys.exit(run())`); absl's --help exits 1 after the usage.
  command = pathlib.Path(sys.executable).parent / "meta-unsup-evaluate"
  if command.is_file():
    args = [str(command), "--help"]
  else:  # not installed: the same entry point
    args = [sys.executable, "-c", "from meta_unsup_rules.scripts.evaluate import run; run()", "--help"]
  proc = subprocess.run(args, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode in (0, 1) and "--theta" in proc.stdout and "--config" in proc.stdout, (
    proc.stdout[-2000:] + proc.stderr[-2000:]
  )


# ------------------------------------------------------------ what `pip install .` installs


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_package_with_configs_thetas_and_commands(tmp_path):
  proc = subprocess.run(
    [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
    capture_output=True,
    text=True,
    timeout=600,
  )
  if proc.returncode != 0 and _pip_failed_offline(proc):
    pytest.skip(f"pip cannot fetch the build requirements (offline?): {proc.stderr[-300:]}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  (wheel,) = tmp_path.glob("meta_unsup_rules-*.whl")
  with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    entry_points = next(z.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
  top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
  assert top == {"meta_unsup_rules"}, top
  for release in api.release_names():
    for f in ("theta.npz", "config.json", "summary.json"):
      assert f"meta_unsup_rules/checkpoints/{release}/{f}" in names
  assert "meta_unsup_rules/configs/local.py" in names and "meta_unsup_rules/learned_update/api.py" in names
  assert not [n for n in names if n.startswith("meta_unsup_rules/experiments")]
  for command, target in COMMANDS.items():
    assert f"{command} = {target}" in entry_points


@pytest.mark.slow
def _child_venv(env_dir) -> None:
  """A venv that sees the packages of the interpreter running the tests, be it the system's or
  itself a venv: `system_site_packages` alone would give it the *base* interpreter's packages, so a
  .pth names the running interpreter's site-packages (plain path lines: their own .pth files, such as
  the checkout's editable install, are not processed, so the child's own install of the project wins)."""
  import site
  import sysconfig

  venv.create(env_dir, system_site_packages=True, with_pip=True)
  child = subprocess.run(
    [
      str(pathlib.Path(env_dir) / "bin" / "python"),
      "-c",
      "import sysconfig; print(sysconfig.get_paths()['purelib'])",
    ],  # noqa: E501
    capture_output=True,
    text=True,
    check=True,
  ).stdout.strip()
  ours = dict.fromkeys([sysconfig.get_paths()["purelib"], *site.getsitepackages()])
  (pathlib.Path(child) / "zz_running_interpreter.pth").write_text("".join(f"{p}\n" for p in ours))


def test_dasks_distributed_and_the_project_in_one_environment(tmp_path):
  """A venv that sees this environment (--system-site-packages) gets Dask's `distributed` and a plain
  (non-editable) install of the project: both import, and the commands run, from outside the checkout."""
  env_dir = tmp_path / "venv"
  _child_venv(env_dir)
  python = env_dir / "bin" / "python"
  pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
  proc = subprocess.run(
    [*pip, "dask==2026.8.0", "distributed==2026.8.0"], capture_output=True, text=True, timeout=900
  )
  if proc.returncode != 0 and _pip_failed_offline(proc):
    pytest.skip(f"pip cannot reach the package index for dask/distributed: {proc.stderr[-300:]}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  proc = subprocess.run([*pip, "--no-deps", str(ROOT)], capture_output=True, text=True, timeout=900)
  if proc.returncode != 0 and _pip_failed_offline(proc):
    pytest.skip(f"pip cannot fetch the build requirements (offline?): {proc.stderr[-300:]}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  probe = (
    _PROBE + "import meta_unsup_rules, distributed\n"
    "print('dask', distributed.Client.__module__, distributed.__version__)\n"
    "print('installed', meta_unsup_rules.__path__)\n"
  )
  proc = subprocess.run(
    [str(python), "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert (
    "rule ojac_hand_clean" in proc.stdout
    and "releases ojac_clean_u50,ojac_hand_clean,paper_track_u1200" in proc.stdout
  )
  assert "dask distributed.client 2026.8.0" in proc.stdout, proc.stdout
  assert str(env_dir) in proc.stdout.split("installed", 1)[1]  # the venv's copy, not the checkout
  proc = subprocess.run(
    [str(env_dir / "bin" / "meta-unsup-evaluate"), "--help"],
    cwd=elsewhere,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0 and "--theta" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
  # The installed commands' --help is the checkout's: description, examples, the config syntax.
  assert "Evaluate a learned update rule" in proc.stdout and "--config.SECTION.FIELD" in proc.stdout
  for command, needles in (
    ("meta-unsup-data", ("describe", "prepare_tfds")),
    ("meta-unsup-train", ("--workdir",)),
  ):
    exe = str(env_dir / "bin" / command)
    proc = subprocess.run(
      [exe, "--help"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
    )
    shown = proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.returncode == 0 and all(n in proc.stdout for n in needles), shown
