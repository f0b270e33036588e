"""python -m dqn_bench {run,list}: plan -> validate -> execute -> store."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

import envs
from dqn_bench import config as cfg
from dqn_bench import checkpoints, registry, stop
from dqn_bench.claims import Claims
from dqn_bench.files import WriteFailed
from dqn_bench.executors import default_workers, require_ray, run_local, run_ray
from dqn_bench.progress import Progress
from dqn_bench.protocol import ConfigError, available_memory
from dqn_bench.store import Store
from dqn_bench.train_log import require_tensorboard


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2, no usage dump
        self.exit(2, f"error: {message} (see --help)\n")


def _names(values: Sequence[str] | None) -> list[str] | None:
    """Accept both `--agents a b` and `--agents a,b`."""
    if not values:
        return None
    return [n for v in values for n in v.split(",") if n]


def validate(specs: list[cfg.RunSpec]) -> dict[tuple[str, str], int]:
    """Build each env and each agent on it once, so a bad pairing fails before any run starts.
    Returns the replay memory one seed of each (agent, env) needs, in bytes."""
    env_cache, memory = {}, {}
    for spec in specs:
        if (spec.agent, spec.env) in memory:
            continue
        if spec.env not in env_cache:
            env_cache[spec.env] = envs.make(spec.env_id, 0, **spec.env_kwargs)
        env = env_cache[spec.env]
        try:
            agent = registry.make_agent(spec.agent_spec, env.observation_space, env.action_space, spec.config, [0],
                                       spec.budget)
        except ConfigError as e:
            raise ConfigError(f"agent '{spec.agent}' cannot run on '{spec.env}': {e}") from None
        memory[(spec.agent, spec.env)] = getattr(agent, "memory_bytes", 0)
    return memory


def plan_batches(todo: list[cfg.RunSpec], workers: int, seed_batch: int | None, memory: dict,
                 checkpoint_dir: Path) -> list[list[cfg.RunSpec]]:
    """Seed batches that fit in memory: `workers` batches run at once, each holding K replays."""
    available = available_memory()
    per_seed = lambda s: memory.get((s.agent, s.env), 0)  # noqa: E731
    biggest = max((per_seed(s) for s in todo), default=0)
    if available and biggest * workers > available:
        raise ConfigError(f"{workers} concurrent runs need {biggest * workers / 2**30:.1f} GiB of replay, "
                          f"{available / 2**30:.1f} GiB available; use fewer --workers or a smaller buffer_size")
    cap = lambda s: available // (workers * per_seed(s)) if available and per_seed(s) else 1 << 30  # noqa: E731
    args = dict(batched=lambda s: registry.seed_batched(s.agent_spec), pending=checkpoints.pending(checkpoint_dir))
    batches = cfg.seed_batches(todo, workers, seed_batch, max_batch=cap, **args)
    wanted = cfg.seed_batches(todo, workers, seed_batch, **args)
    if max(map(len, wanted), default=0) > max(map(len, batches), default=0):
        print(f"seed batches lowered from {max(map(len, wanted))} to {max(map(len, batches))} seeds so "
              f"{workers} concurrent batches of replay fit in {available / 2**30:.1f} GiB", file=sys.stderr)
    return batches


def planned(args) -> tuple[dict, list[cfg.RunSpec]]:
    """`run`'s suite and its runs, as its arguments select them."""
    for pkg in args.env_package:
        envs.import_env_package(pkg)
    suite = cfg.load_suite(args.suite)
    return suite, cfg.plan(suite, _names(args.agents), _names(args.envs), args.seeds, cfg.parse_sets(args.set),
                           first_seed=args.first_seed)


def cmd_run(args) -> int:
    suite, specs = planned(args)
    return execute(specs, Store(Path(args.out) / suite["name"]), suite, args)


def check_device(device: str) -> None:
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError:
        kind = None
    if kind not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device} is not a device; give cpu, cuda or cuda:N")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: torch {torch.__version__} sees no CUDA device here; use --device cpu")


def check_execution_flags(args) -> None:
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    if args.seed_batch is not None and args.seed_batch < 1:
        raise ConfigError(f"--seed-batch must be >= 1, got {args.seed_batch}")
    if args.checkpoint_every is not None and args.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    for flag, folder in (("--checkpoint-dir", args.checkpoint_dir), ("--tensorboard", args.tensorboard)):
        if folder and Path(folder).exists() and not Path(folder).is_dir():
            raise ConfigError(f"{flag} {folder} is not a folder; give a folder (created if missing)")
    if args.ray_address and args.executor != "ray":
        raise ConfigError("--ray-address needs --executor ray")
    check_device(args.device)
    if args.executor == "ray":
        require_ray()  # fail before any work if the extra is missing
    if args.tensorboard:
        require_tensorboard()


def execute(specs: list[cfg.RunSpec], store: Store, suite: dict, args) -> int:
    """Validate, skip what the store has, seed-batch the rest, run them, store each record (and
    its final network) as it lands. Shared by `run` and `sweep`."""
    check_execution_flags(args)
    memory = validate(specs)
    if store.runs.is_dir():
        store.quarantine_corrupt()
    done = store.finished(retry_failed=args.retry_failed)
    todo = [s for s in specs if s.key not in done]
    workers = args.workers or max(1, default_workers() // args.threads)
    checkpoint_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else store.root / "checkpoints"
    seed_batch = args.seed_batch if args.seed_batch is not None else suite.get("seed_batch")
    batches = plan_batches(todo, workers, seed_batch, memory, checkpoint_dir)
    workers = min(workers, max(1, len(batches)))
    store.check_writable()  # the last check: it creates the folder
    per_batch = max((sum(memory.get((s.agent, s.env), 0) for s in b) for b in batches), default=0)
    if per_batch:
        print(f"replay memory: up to {per_batch / 2**30:.2f} GiB per seed batch, {per_batch * workers / 2**30:.2f} GiB "
              f"for {workers} concurrent batch(es); {available_memory() / 2**30:.1f} GiB available", file=sys.stderr)
    sizes = sorted({len(b) for b in batches})
    print(f"{suite['name']}: {len(specs)} runs, {len(specs) - len(todo)} already stored, "
          f"{len(todo)} to run in {len(batches)} seed batch(es) of {'/'.join(map(str, sizes)) or 0} "
          f"on {workers} worker(s){f' of {args.threads} threads' if args.threads > 1 else ''} -> {store.runs}",
          file=sys.stderr)
    progress = Progress(sum(s.budget for s in todo), len(todo))
    every = args.checkpoint_every if args.checkpoint_every is not None else int(suite.get("checkpoint_every", 0))
    options = dict(tensorboard=Path(args.tensorboard) if args.tensorboard else None, policies=True,
                   progress=progress.steps, threads=args.threads, device=args.device)
    # another command on this folder may hold some batches: each is claimed just before it starts
    claims = Claims(checkpoint_dir, lambda spec: store.done(spec, args.retry_failed), say=progress.note)
    left: list = []

    def leave(batch) -> None:
        left.append(batch)
        progress.drop(sum(s.budget for s in batch), len(batch))

    mine = claims.claimed(batches, left=leave)
    failed = ok = 0
    with stop.handled():  # a first Ctrl-C or SIGTERM lets checkpointing runs save their step
        if args.executor == "ray":
            records = run_ray(mine, workers, args.env_package, checkpoint_dir, every, address=args.ray_address,
                              **options)
        else:
            records = run_local(mine, workers, args.env_package, checkpoint_dir, every, **options)
        try:
            for record in records:
                store.write(record)
                claims.stored(record["key"])
                ok += record["status"] == "ok"
                spec = record["spec"]
                label = f"{spec['agent']}/{spec['env']}/s{spec['seed']}"
                if record["status"] == "failed":
                    failed += 1
                    progress.note(f"FAILED {spec['agent']} {spec['env']} seed {spec['seed']}: {record['error']}")
                score = record["final_score"]
                progress.run_finished(f"{label} score {score if score is None else round(score, 1)}", record["status"] == "failed")
        finally:
            # the executor's cleanup (Ray's cancel and shutdown, the pool's) runs now, under the stop handler,
            # not when the generator is collected: Ray torn down during interpreter exit can crash the process
            records.close()
            claims.release()
            progress.close()
    others = sum(map(len, left))
    print(f"done: {ok} ok, {failed} failed" + (f", {others} left to other commands on this folder" if others else "")
          + f", records in {store.runs}", file=sys.stderr)
    return 1 if failed else 0


def cmd_sweep(args) -> int:
    from dqn_bench import reporting, sweep

    for pkg in args.env_package:
        envs.import_env_package(pkg)
    suite = cfg.load_suite(args.suite)
    grid, sets = sweep.parse_grid(args.grid), cfg.parse_sets(args.set)
    both = sorted(set(grid) & set(sets))
    if both:
        raise ConfigError(f"{', '.join(both)} given by both --grid and --set; a key is swept or fixed, not both")
    if args.reps < 1:
        raise ConfigError(f"--reps must be >= 1, got {args.reps}")
    agents, env_labels = _names(args.agents), _names(args.envs)
    try:
        specs, points = sweep.plan(suite, agents, env_labels, args.seeds, sets, grid, args.first_seed)
    except ConfigError as e:
        raise ConfigError(str(e).replace("--set key", "--grid/--set key")) from None
    name = args.name or sweep.folder_name(suite["name"], agents or [], env_labels or [], grid)
    store = Store(Path(args.out) / "sweeps" / name)
    code = execute(specs, store, {**suite, "name": f"sweep {name}"}, args)
    sweep.save_definition(store.root, grid, points)  # so CI can rebuild and check the report
    reporting.write(store.root, sweep.build(store.root, grid, points, args.reps))
    print(f"wrote the sweep report to {store.root / 'README.md'}", file=sys.stderr)
    return code


def cmd_play(args) -> int:
    from dqn_bench import play

    suite = cfg.load_suite(args.suite)
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    (spec,) = cfg.plan(suite, [args.agent], [args.env], 1, cfg.parse_sets(args.set), first_seed=args.seed)
    store = Store(Path(args.out) / suite["name"])
    command = (f"python -m dqn_bench run --suite {args.suite} --agents {args.agent} --envs {args.env} "
               f"--first-seed {args.seed} --seeds 1" + "".join(f" --set {kv}" for kv in args.set)
               + (f" --out {args.out}" if args.out != "results" else ""))
    if not store.path_for(spec).exists():
        raise ConfigError(f"no stored run of {args.agent} on {args.env} seed {args.seed} in {store.runs}; "
                          f"run `{command}` first")
    model = store.model_path(spec)
    if not model.exists():
        raise ConfigError(f"run {spec.name} has no saved network in {model.parent} (failed, recorded before "
                          f"networks were saved, or its agent exports none); move its record out of runs/ and "
                          f"run `{command}`")
    if args.video:
        play.require_video()
    returns = play.play(spec, model, args.episodes, Path(args.video) if args.video else None)
    for i, ret in enumerate(returns):
        print(f"episode {i} (reset seed {spec.eval_seed + i}): return {ret:g}")
    print(f"mean return over {len(returns)} episode(s): {np.mean(returns):g}"
          + (f"; videos in {args.video}" if args.video else ""))
    eps = float(spec.config.get("eval_epsilon", 0))
    if eps > 0:
        print(f"(its evaluation policy acts at random with probability {eps:g}: these episodes are new draws, "
              f"so they need not repeat the record's final evaluation)")
    return 0


def cmd_diagnose(args) -> int:
    from dqn_bench import diagnose

    suite = cfg.load_suite(args.suite)
    if args.every < 1:
        raise ConfigError(f"--every must be >= 1, got {args.every}")
    specs = cfg.plan(suite, [args.agent], [args.env], args.seeds, cfg.parse_sets(args.set), args.first_seed)
    if registry.probe(specs[0].agent_spec) is None:
        raise ConfigError(f"agent '{args.agent}' has no diagnostics probe (entry-point group {registry.PROBES}); "
                          f"diagnose covers the dqn family")
    rows, results = diagnose.diagnose(specs, args.every)
    paths = diagnose.write(Path(args.out), specs, rows, results, tuple(args.set))
    print(f"wrote {paths[0]} and {paths[1]}", file=sys.stderr)
    return 0


def cmd_report(args) -> int:
    from dqn_bench import reporting

    suite = cfg.load_suite(args.suite)
    root = Path(args.out) / suite["name"]
    if not (root / "runs").is_dir():
        raise ConfigError(f"no records in {root / 'runs'}; run `python -m dqn_bench run --suite {args.suite}` first")
    if args.reps < 1:
        raise ConfigError(f"--reps must be >= 1, got {args.reps}")
    files = reporting.build(root, reps=args.reps, allow_ragged=args.allow_ragged, notes=suite.get("notes"),
                            improvement_over=suite.get("improvement_over", reporting.IMPROVEMENT_OVER))
    if args.check:
        stale = reporting.stale(root, files)
        if stale:
            print(f"stale report in {root}: {', '.join(stale)} differ from the records; "
                  f"run `python -m dqn_bench report --suite {args.suite}`", file=sys.stderr)
            return 1
        print(f"report in {root} is current ({len(files)} files)", file=sys.stderr)
        return 0
    reporting.write(root, files)
    print(f"wrote {', '.join(sorted(files))} to {root}", file=sys.stderr)
    return 0


def cmd_phase(args) -> int:
    from dqn_bench import phase

    suite = cfg.load_suite(args.suite)
    (spec,) = [s for s in cfg.plan(suite, [args.agent], [args.env], args.seed + 1, cfg.parse_sets(args.set))
               if s.seed == args.seed]
    out = Path(args.png or f"results/phase/{spec.env}__{spec.agent}__s{spec.seed}.png")
    if out.suffix != ".png":
        raise ConfigError(f"--png must end in .png, got {out}")
    result = phase.draw(spec, out, args.grid)
    print(f"wrote {out} (final evaluation {result['final_score']:.1f})", file=sys.stderr)
    return 0


def cmd_list(args) -> int:
    print("agents (name: base agent, preset overrides):")
    for name, (spec, preset) in sorted(registry.agent_names().items()):
        extra = ", ".join(f"{k}={v}" for k, v in preset.items())
        print(f"  {name}: {spec}" + (f" [{extra}]" if extra else f" ({registry.specs()[spec].description})"))
    print("suites:")
    for name in cfg.suite_names():
        suite = cfg.load_suite(name)
        print(f"  {name}: {suite.get('description', '')}")
        print(f"    agents: {', '.join(suite.get('agents', []))}")
        print(f"    envs: {', '.join(suite.get('envs', []))}; seeds: {suite.get('seeds', 1)}")
    print("envs: any registered Gymnasium id with a Discrete action space (--env-package registers more)")
    return 0


def add_execution_args(p: argparse.ArgumentParser) -> None:
    """How runs execute and what they leave besides records; the same for `run` and `sweep`."""
    p.add_argument("--first-seed", type=int, default=0, metavar="S",
                   help="seeds are S..S+N-1 (default 0; tuning sweeps use seeds the reported runs do not)")
    p.add_argument("--workers", type=int, help="parallel processes (default: number of cores / --threads)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch threads per process (default 1: cores go to batches side by side; more pays "
                        "when batches are fewer than cores, as for one Atari run; it changes float rounding, "
                        "so each record notes it)")
    p.add_argument("--device", default="cpu",
                   help="torch device the DQN family trains on: cpu (default) or cuda[:N]; a GPU's float rounding "
                        "differs from a CPU's, so each record names the GPU")
    p.add_argument("--seed-batch", type=int, metavar="K",
                   help="train up to K seeds of one configuration together in one process (1 = one seed "
                        "per process; default: the suite's seed_batch, else as large as keeps every worker busy)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override an agent config key or budget/eval_every/eval_episodes/final_eval_episodes")
    p.add_argument("--env-package", action="append", default=[], help="import a package that registers envs")
    p.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                   help="checkpoint each batch every STEPS env steps and resume from it; "
                        "default: the suite's checkpoint_every, else off")
    p.add_argument("--checkpoint-dir", metavar="DIR",
                   help="where batches checkpoint (default: beside the records; on a cluster: shared storage)")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local process pool (default) or Ray tasks (extra: pip install -e .[ray])")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster (e.g. ray://head:10001 or auto); default: start a local instance")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="log each run's scalars to DIR/<run> (extra: pip install -e .[tensorboard]); default off")
    p.add_argument("--retry-failed", action="store_true", help="run again the runs recorded as failed")


def build_parser() -> Parser:
    p = Parser(prog="python -m dqn_bench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = sub.add_parser("run", help="run a suite's agent x env x seed grid; finished runs are skipped")
    run.add_argument("--suite", required=True, help=f"one of {', '.join(cfg.suite_names())} or a .toml file")
    run.add_argument("--agents", nargs="+", help="agents or presets (default: the suite's)")
    run.add_argument("--envs", nargs="+", help="env labels or Gymnasium ids (default: the suite's)")
    run.add_argument("--seeds", type=int, help="number of seeds, 0..N-1 (default: the suite's)")
    run.add_argument("--out", default="results", help="results root; records go to OUT/SUITE/runs")
    add_execution_args(run)
    run.set_defaults(func=cmd_run)

    sw = sub.add_parser("sweep", help="run a grid of config values (each point a stored, resumable set of runs) "
                                      "and rank the points")
    sw.add_argument("--suite", required=True, help=f"one of {', '.join(cfg.suite_names())} or a .toml file")
    sw.add_argument("--agents", nargs="+", required=True, help="agents or presets")
    sw.add_argument("--envs", nargs="+", required=True, help="env labels or Gymnasium ids")
    sw.add_argument("--seeds", type=int, help="seeds per point (default: the suite's)")
    sw.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2[,...]",
                    help="a config key (or budget/eval key) and its values; repeat for more keys (cartesian)")
    sw.add_argument("--out", default="results", help="results root; the sweep goes to OUT/sweeps/NAME")
    sw.add_argument("--name", help="the sweep's folder name (default: suite, agents, envs and grid keys)")
    sw.add_argument("--reps", type=int, default=2000, help="bootstrap replications of the sweep report")
    add_execution_args(sw)
    sw.set_defaults(func=cmd_sweep)

    pl = sub.add_parser("play", help="load a stored run's final network and play episodes of its evaluation policy")
    pl.add_argument("--suite", required=True)
    pl.add_argument("--agent", required=True)
    pl.add_argument("--env", required=True)
    pl.add_argument("--seed", type=int, required=True)
    pl.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="as given to the run")
    pl.add_argument("--out", default="results", help="results root the run was stored under")
    pl.add_argument("--episodes", type=int, default=3)
    pl.add_argument("--video", metavar="DIR", help="write one MP4 per episode there (extra: pip install -e .[video])")
    pl.set_defaults(func=cmd_play)

    dg = sub.add_parser("diagnose", help="train a seed batch while probing Q scale, TD errors, gradients, streams "
                                         "and priorities; writes a CSV and a Markdown summary")
    dg.add_argument("--suite", default="classic")
    dg.add_argument("--agent", required=True)
    dg.add_argument("--env", required=True)
    dg.add_argument("--seeds", type=int, default=3, help="seeds trained together (default 3)")
    dg.add_argument("--first-seed", type=int, default=100, metavar="S",
                    help="seeds S..S+N-1 (default 100: off the reported seeds)")
    dg.add_argument("--every", type=int, default=2000, help="env steps between probes")
    dg.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    dg.add_argument("--out", default="results/diagnostics", help="folder for the CSV and the summary")
    dg.set_defaults(func=cmd_diagnose)

    rep = sub.add_parser("report", help="rliable tables and plots from a suite's stored records")
    rep.add_argument("--suite", required=True)
    rep.add_argument("--out", default="results", help="results root (reads OUT/SUITE/runs)")
    rep.add_argument("--reps", type=int, default=2000, help="bootstrap replications")
    rep.add_argument("--allow-ragged", action="store_true", help="a grid still landing: every run in the per-env tables, only seeds "
                          "an agent has on every env in the aggregates")
    rep.add_argument("--check", action="store_true", help="exit 1 if the committed outputs differ from a rebuild")
    rep.set_defaults(func=cmd_report)

    ph = sub.add_parser("phase", help="train one run and draw greedy action and V(s) over a 2-D state space")
    ph.add_argument("--suite", default="classic")
    ph.add_argument("--agent", default="discretized_q")
    ph.add_argument("--env", default="MountainCar-v0")
    ph.add_argument("--seed", type=int, default=0)
    ph.add_argument("--grid", type=int, default=101, help="grid points per axis")
    ph.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ph.add_argument("--png", help="output file (default results/phase/ENV__AGENT__sSEED.png)")
    ph.set_defaults(func=cmd_phase)

    ls = sub.add_parser("list", help="agents, presets, suites and envs")
    ls.set_defaults(func=cmd_list)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (WriteFailed, checkpoints.Unreadable) as e:  # a full disk, a broken saved network: not bad input
        print(f"error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `list | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (stop.Stopped)
        print("interrupted: finished runs are stored, checkpointed runs resume from their last save; rerun the same "
              "command to continue", file=sys.stderr)
        return 128 + getattr(e, "signum", signal.SIGINT)
