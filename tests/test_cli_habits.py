"""What a command-line user expects: a misspelt --config field or an unreachable Ray address exits 2 with
a message, --help lists each command's own flags, progress is tqdm's with plain lines in a file."""

import io
import os
import pathlib
import socket
import subprocess
import sys

import pytest

from meta_unsup_rules.configs import tiny
from meta_unsup_rules.scripts import config_args
from meta_unsup_rules.util import progress

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(module, *args, timeout=300):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  return subprocess.run(
    [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
  )


def test_unknown_field_message_names_the_field_and_the_nearest_ones():
  cfg = tiny.get_config()
  message = config_args.unknown_field_message(cfg, ["seed", "evaluation.seedz"])
  assert "no field evaluation.seedz" in message and "nearest valid: evaluation.seeds" in message
  message = config_args.unknown_field_message(cfg, ["learnr.batch_size"])
  assert "no field learnr;" in message and "nearest valid: learner" in message
  assert "is a value, not a section" in config_args.unknown_field_message(cfg, ["seed.x"])
  assert config_args.unknown_field_message(cfg, ["evaluation.seeds", "learner.batch_size"]) is None


@pytest.mark.parametrize(
  "module,args,needle",
  [
    ("scripts.evaluate", ["--config.evaluation.nosuch=1"], "no field evaluation.nosuch; nearest valid: "),
    ("scripts.evaluate", ["--config=configs/tiny.py", "--config.evaluation.seedz=3"], "evaluation.seeds"),
    ("scripts.meta_train", ["--workdir=/nonexistent/x", "--config.learnr.batch_size=3"], "valid: learner"),
  ],
)
def test_an_unknown_config_field_exits_2_without_a_traceback(module, args, needle):
  proc = _run(module, *args)
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert needle in proc.stderr and "Traceback" not in proc.stderr


def test_an_unreachable_ray_address_exits_2_naming_it(tmp_path):
  with socket.socket() as s:  # a port nothing listens on once this socket is closed
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  workdir = tmp_path / "run"
  proc = _run(
    "scripts.meta_train",
    "--config=configs/tiny.py",
    f"--workdir={workdir}",
    "--config.workers.mode=ray",
    f"--config.workers.ray_address=127.0.0.1:{port}",
    timeout=120,
  )
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert f"127.0.0.1:{port}" in proc.stderr and "cannot connect" in proc.stderr
  assert not workdir.exists()  # nothing written for a run that cannot start


# Each user-facing command's --help lists the flags it uses, those of scripts/cli.py and config_args.py too.
HELP = {
  "meta_train": ("config", "workdir", "ray_address", "max_minutes", "stop_at_update", "data_dir"),
  "evaluate": ("config", "theta", "task", "seeds", "inner_steps", "methods", "out_dir", "data_dir"),
  "sweep": ("sweep", "values", "theta", "task", "seeds", "out_dir", "data_dir"),
  "export_theta": ("workdir", "out", "step"),
  "demo": ("theta", "task", "seeds", "inner_steps", "data_dir"),
  "benchmark": ("configs", "out", "data_dir"),
  "data": ("datasets", "data_dir", "cold", "cache_dir", "tfds_dir"),
  "plot_training": ("workdir", "out"),
}


@pytest.mark.parametrize("command", sorted(HELP))
def test_help_lists_the_commands_own_flags(command):
  proc = _run(f"scripts.{command}", "--help", timeout=120)  # absl's --help exits 1 after the usage
  assert "Traceback" not in proc.stderr and "\nflags:" in proc.stdout, proc.stderr[-3000:]
  listed = proc.stdout.split("\nflags:", 1)[-1]
  missing = [f for f in HELP[command] if f"--{f}:" not in listed and f"--[no]{f}:" not in listed]
  assert not missing, f"scripts.{command} --help lacks {missing}:\n{proc.stdout[-2000:]}"


def test_progress_in_a_file_is_plain_lines_with_an_eta():
  out = io.StringIO()
  bar = progress.bar(4, "work", unit="step", stream=out, file_interval_sec=0.0)
  for _ in range(4):
    bar.update(1)
  bar.close()
  text = out.getvalue()
  lines = text.splitlines()
  assert "\r" not in text and len(lines) >= 2
  assert lines[-1].startswith("work: 100%") and "4/4" in lines[-1]
  assert "<" in lines[1]  # tqdm's [elapsed<remaining]: the ETA
  assert len(set(lines)) == len(lines)  # the closing redraw is not repeated
