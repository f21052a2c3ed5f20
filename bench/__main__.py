"""`python -m bench all [--quick]`: the performance suite, against the bare stack of the same run.

Each benchmark measures its own baseline first (same machine, same payload, same schema),
then the product, and reports both with the ratio. Results: one JSON object on stdout (and
in --json-out), a table on stderr, and the run's figures added to docs/PERFORMANCE.md with
the command that produced them (--no-record leaves the file alone).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import importlib
import inspect
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.stack import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    ROOT,
    Context,
    ProcessGroup,
    Result,
    bench_env,
    log,
    machine_info,
    manage,
    package_versions,
    redact,
    redis_server_version,
)

# In this order: the baselines first (the others read ctx.baselines), the seeded data before
# the queries that read it.
SUITE = ["baselines", "seeding", "queries", "realtime", "notify"]
PERFORMANCE_MD = ROOT / "docs" / "PERFORMANCE.md"
RUNS_MARKER = "<!-- runs: newest first; `python -m bench` adds one here -->"


def ensure_database(database_url: str) -> None:
    """Create the benchmark's PostgreSQL database when it does not exist yet."""
    import psycopg
    from environ import Env

    db = Env.db_url_config(database_url)
    if not db["ENGINE"].endswith("postgresql"):
        raise RuntimeError("the suite measures PostgreSQL: DATABASE_URL must be postgres://…")
    params = {key.lower(): db.get(key) for key in ("HOST", "PORT", "USER", "PASSWORD") if db.get(key)}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db["NAME"],)).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{db["NAME"]}"')


async def run_one(name: str, ctx: Context) -> Result:
    module = importlib.import_module(f"bench.{name}")
    if inspect.iscoroutinefunction(module.run):
        return await module.run(ctx)
    return await asyncio.to_thread(module.run, ctx)


def table(results: dict[str, dict]) -> str:
    lines = ["| benchmark | metric | target | measured | met |", "| --- | --- | --- | --- | --- |"]
    for name, result in results.items():
        if "error" in result:
            lines.append(f"| {name} | (failed) | | {result['error'].splitlines()[0][:200]} | no |")
            continue
        for row in result["rows"]:
            met = {True: "yes", False: "**no**", None: "baseline"}[row["met"]]
            lines.append(f"| {name} | {row['metric']} | {row['target']} | {row['measured']} | {met} |")
    return "\n".join(lines)


def record(report: dict) -> None:
    """Add this run's table to docs/PERFORMANCE.md, newest first, under the runs marker."""
    text = PERFORMANCE_MD.read_text() if PERFORMANCE_MD.exists() else f"# Performance\n\n{RUNS_MARKER}\n"
    if RUNS_MARKER not in text:
        text = text.rstrip() + f"\n\n## Runs\n\n{RUNS_MARKER}\n"
    m = report["machine"]
    section = "\n".join(
        [
            f"### {report['date']} · {'quick' if report['quick'] else 'full'} run · "
            f"commit {report['commit']}",
            "",
            f"`{report['command']}` ({report['seconds']} s; {m['cpu_count']} CPUs {m['cpu_model']}, "
            f"load {m['load_average']} at start; PostgreSQL {report['versions'].get('postgresql')}, "
            f"Redis {report['versions'].get('redis_server')})",
            "",
            report["table"],
            "",
        ]
    )
    PERFORMANCE_MD.write_text(text.replace(RUNS_MARKER, f"{RUNS_MARKER}\n\n{section}", 1))


def git_commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return (result.stdout.strip() or "unknown") + ("+changes" if dirty else "")


def postgres_version(database_url: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(database_url) as connection:
            return connection.execute("SHOW server_version").fetchone()[0]
    except psycopg.Error:
        return None


async def main_async(args, scratch: Path, group: ProcessGroup) -> dict:
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    run_tag = f"{time.strftime('%H%M%S')}{secrets.token_hex(2)}"
    ensure_database(database_url)
    env = bench_env(database_url, redis_url, run_tag)
    log(f"database {redact(database_url)}, redis {redact(redis_url)}, run {run_tag}")
    log("migrate")
    manage(env, "migrate", "--noinput")
    ctx = Context(
        quick=args.quick, database_url=database_url, redis_url=redis_url, run_tag=run_tag,
        scratch=scratch, group=group, env=env,
    )  # fmt: skip
    names = SUITE if args.benchmark == "all" else ["baselines", args.benchmark]
    names = list(dict.fromkeys(names))
    started = time.monotonic()
    load_at_start = machine_info()
    results: dict[str, dict] = {}
    for name in names:
        log(f"== {name}")
        begun = time.monotonic()
        try:
            result = await run_one(name, ctx)
        except Exception as exc:  # one failing benchmark must not hide the others' figures
            log(f"{name} failed: {type(exc).__name__}: {exc}")
            error = f"{type(exc).__name__}: {exc}"
            results[name] = {"error": error, "seconds": round(time.monotonic() - begun)}
            continue
        finally:
            group.stop_all()
        results[name] = {
            "rows": [dataclasses.asdict(row) for row in result.rows],
            "details": result.details,
            "seconds": round(time.monotonic() - begun),
        }
    report = {
        "suite": "bench",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "quick": args.quick,
        "seconds": round(time.monotonic() - started),
        "database_url": redact(database_url),
        "redis_url": redact(redis_url),
        "machine": load_at_start,
        "versions": {
            **package_versions(),
            "postgresql": postgres_version(database_url),
            "redis_server": redis_server_version(redis_url),
        },
        "results": results,
    }
    report["table"] = table(results)
    return report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmark", nargs="?", default="all", choices=["all", *SUITE])
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    parser.add_argument("--json-out", type=Path, help="also write the JSON report to this file")
    parser.add_argument("--no-record", action="store_true", help="do not add the run to docs/PERFORMANCE.md")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-"))
    group = ProcessGroup(scratch)

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    failed = False
    try:
        report = asyncio.run(main_async(args, scratch, group))
        failed = any("error" in result for result in report["results"].values())
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        group.stop_all()
        if args.keep_logs or failed:
            log(f"logs kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    if not args.no_record:
        record(report)
        log(f"recorded in {PERFORMANCE_MD.relative_to(ROOT)}")
    print("\n" + report["table"], file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
