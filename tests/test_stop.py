"""Ctrl-C or SIGTERM saves a checkpointing run at the step it reached; the rerun ends as if
nothing had happened. A second signal, or one with nothing to save, stops at once."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from dqn_bench import checkpoints, runner, stop
from dqn_bench.runner import run_batch
from dqn_bench.train_log import Ticker
from conftest import SETS, plan, strip

def signal_at(monkeypatch, step, times=1, signum=signal.SIGTERM):
    """Deliver `times` real signals to this process once the loop reaches `step` (mid-step: after
    its evaluation, before its checkpoint)."""
    class SignalAt(Ticker):
        def tick(self, s, force=False):
            if s == step:
                for _ in range(times):
                    os.kill(os.getpid(), signum)
            super().tick(s, force)
    monkeypatch.setattr(runner, "Ticker", SignalAt)


def test_a_stop_saves_the_checkpoint_at_that_step_and_the_rerun_ends_as_uninterrupted(tmp_path, monkeypatch, capsys):
    specs = plan(seeds=2)
    uninterrupted = run_batch(specs)
    path = tmp_path / "ckpt.pt"
    signal_at(monkeypatch, 777)
    with stop.handled(), pytest.raises(stop.Stopped) as stopped:
        run_batch(specs, path, checkpoint_every=10_000)  # no periodic checkpoint before the budget
    assert stopped.value.signum == signal.SIGTERM
    assert checkpoints.read(path)["progress"]["step"] == 777  # the step it was on, not the last periodic one
    err = capsys.readouterr().err
    assert "stopping:" in err and "seed(s) 0, 1: stopped at step 777 of 1,500, checkpoint saved" in err
    assert stop.asked() is None  # nothing pending once the command's handler is gone
    monkeypatch.setattr(runner, "Ticker", Ticker)
    resumed = run_batch(specs, path, checkpoint_every=10_000)
    assert [strip(r) for r in resumed] == [strip(r) for r in uninterrupted]


def test_a_second_signal_stops_at_once_and_keeps_the_last_periodic_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    signal_at(monkeypatch, 777, times=2, signum=signal.SIGINT)
    with stop.handled(), pytest.raises(stop.Stopped):
        run_batch(plan(seeds=2), path, checkpoint_every=500)
    assert checkpoints.read(path)["progress"]["step"] == 500


def test_without_a_checkpoint_the_first_signal_stops_at_once(monkeypatch):
    signal_at(monkeypatch, 777, signum=signal.SIGINT)
    with stop.handled(), pytest.raises(stop.Stopped) as stopped:
        run_batch(plan(seeds=2))  # nothing to save: no failed record either, the stop propagates
    assert stopped.value.signum == signal.SIGINT


def test_a_deferred_stop_waits_for_check_and_a_second_signal_stops_at_once():
    with stop.handled():
        with stop.deferred():
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs before the next bytecode: nothing raised
            assert stop.asked() == signal.SIGINT
            with pytest.raises(stop.Stopped):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)  # not reached: the second signal raises in the handler
        with pytest.raises(stop.Stopped) as stopped:
            stop.check()
        assert stopped.value.signum == signal.SIGINT  # the first signal's stop, raised where the loop chose
    assert stop.asked() is None
    with stop.handled(), pytest.raises(stop.Stopped):  # outside deferred() the first signal raises at once
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)


def test_sigterm_to_a_command_with_workers_saves_every_batch_and_the_rerun_completes_them(tmp_path, run_cli):
    sets = {**SETS, "budget": "8000", "eval_every": "4000"}
    args = ["run", "--suite", "classic", "--agents", "dqn", "--envs", "CartPole-v1", "--seeds", "2", "--seed-batch", "1",
            "--workers", "2", "--checkpoint-every", "500"] + [f"--set={k}={v}" for k, v in sets.items()]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, "-m", "dqn_bench", *args, "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    ckpt = tmp_path / "classic" / "checkpoints"
    deadline = time.time() + 300
    while len(list(ckpt.glob("*.pt"))) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)  # both workers are training once each has written a checkpoint
    proc.send_signal(signal.SIGTERM)  # the parent only, as a scheduler's `kill` does
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM and "interrupted" in err, err
    said = sorted(int(s.replace(",", "")) for s in re.findall(r"stopped at step ([\d,]+) of 8,000, checkpoint saved", err))
    saved = sorted(checkpoints.read(p)["progress"]["step"] for p in ckpt.glob("*.pt"))
    assert len(saved) == 2 and said == saved, err  # each worker saved the step it said
    assert not list((tmp_path / "classic" / "runs").glob("*.json"))

    again = run_cli(*args, "--out", tmp_path, env={"PYTHONHASHSEED": "0"})
    assert again.returncode == 0, again.stderr
    records = sorted((json.loads(p.read_text()) for p in (tmp_path / "classic" / "runs").glob("*.json")),
                     key=lambda r: r["spec"]["seed"])
    expected = [run_batch([spec])[0] for spec in plan(seeds=2, sets=sets)]
    assert [r["eval"] for r in records] == [r["eval"] for r in expected]
    assert [r["train"] for r in records] == [r["train"] for r in expected]


def test_a_workers_progress_report_survives_a_parent_that_is_going_away():
    from dqn_bench.executors import _put

    class Gone:
        def put(self, item):
            raise BrokenPipeError("the manager process is gone")

    class Kept(list):
        put = list.append

    kept = Kept()
    _put(kept, 256, True)
    assert kept == [(256, True)]
    _put(Gone(), 256)  # swallowed: the run goes on to its checkpoint instead of failing


def test_sigterm_to_a_command_whose_other_worker_is_idle_says_one_line_and_saves_the_busy_one(tmp_path):
    """An idle pool worker (its batch done, none left) has nothing to save: it leaves quietly, no traceback."""
    sets = {**SETS, "budget": "50000", "eval_every": "25000"}
    args = ["run", "--suite", "classic", "--agents", "random", "dqn", "--envs", "CartPole-v1", "--seeds", "1",
            "--workers", "2", "--checkpoint-every", "500"] + [f"--set={k}={v}" for k, v in sets.items()]
    cmd = [sys.executable, "-m", "dqn_bench", *args, "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONHASHSEED": "0"})
    runs, ckpt = tmp_path / "classic" / "runs", tmp_path / "classic" / "checkpoints"
    deadline = time.time() + 300
    while not (list(runs.glob("*.json")) and list(ckpt.glob("*.pt"))) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)  # random's record is stored (its worker now idle) and dqn has saved once
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    assert re.search(r"dqn on CartPole-v1, seed\(s\) 0: stopped at step [\d,]+ of 50,000, checkpoint saved", err), err
    assert [json.loads(p.read_text())["spec"]["agent"] for p in runs.glob("*.json")] == ["random"]
