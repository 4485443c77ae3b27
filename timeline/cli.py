"""The ``timeline`` command: load, import, export and (later) serve the record."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import click
from eventsourcing.domain import EventSourcingError
from eventsourcing.persistence import PersistenceError
from tqdm import tqdm

from events.chronicle import Chronicle
from events.errors import RecordError
from timeline import transfer
from timeline.projections import by_name
from timeline.projector import Projector, differences, verify_chain


class Failure(click.ClickException):
    """An error said in one line, exit code 1: a driver's message may run on over
    several (psycopg adds "Is the server running on that host ..." on a line of its own)."""

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))


def open_chronicle() -> Chronicle:
    try:
        return Chronicle()
    except (ValueError, OSError, PersistenceError) as error:
        raise Failure(f"cannot open the record: {error}") from None


class Commands(click.Group):
    """Errors of the store (unreachable, corrupted) end a command with one line, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (EventSourcingError, RecordError, OSError) as error:
            raise Failure(f"{type(error).__name__}: {error}") from None


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The record of sourced developments of contemporary history.

    The store is chosen by TIMELINE_DATABASE_URL (default sqlite:///instance/timeline.db).
    """


@main.command()
@click.option("--if-empty", is_flag=True, help="Only load the seed into an empty record.")
def seed(if_empty: bool) -> None:
    """Load the shipped seed data set (idempotent: loading it twice adds nothing)."""
    chronicle = open_chronicle()
    if if_empty and chronicle.recorder.max_notification_id():
        click.echo("The record is not empty; seed not loaded.")
        return
    _import(chronicle, transfer.SEED, recorded_by="seed", batch_size=transfer.BATCH_SIZE)


@main.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", "recorded_by", default="import", show_default=True, help="Who the writes are recorded as.")
@click.option("--batch-size", default=transfer.BATCH_SIZE, show_default=True, type=click.IntRange(1, 100_000))
def import_(path: Path, recorded_by: str, batch_size: int) -> None:
    """Import a JSON Lines file of commands, or copy an exported event log into an empty store."""
    chronicle = open_chronicle()
    if transfer.is_event_log(path):
        with path.open(encoding="utf-8") as stream, _bar(path) as bar:
            try:
                copied = transfer.copy_events(chronicle, transfer.read_lines(stream), progress=bar.update)
            except RecordError as error:
                raise Failure(str(error)) from None
            except UnicodeDecodeError as error:  # a stored event log is UTF-8; anything else is damage
                raise Failure(f"{path} is not UTF-8 ({error}); nothing after the last whole batch was copied") from None
        click.echo(f"Copied {copied} stored events.")
        return
    _import(chronicle, path, recorded_by=recorded_by, batch_size=batch_size)


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def export(path: Path) -> None:
    """Write the whole event log, in order and as stored, to a JSON Lines file."""
    chronicle = open_chronicle()
    total = chronicle.recorder.max_notification_id() or 0
    with path.open("w", encoding="utf-8") as stream, tqdm(total=total, unit="ev", desc="export") as bar:
        count = transfer.export_events(chronicle, stream, progress=bar.update)
    click.echo(f"Exported {count} events to {path}.")


def _import(chronicle: Chronicle, path: Path, *, recorded_by: str, batch_size: int) -> None:
    started = time.perf_counter()
    # Bytes that are not UTF-8 become unpaired surrogates, which the rules refuse with the
    # line and field, like every other bad input.
    with path.open(encoding="utf-8", errors="surrogateescape") as stream, _bar(path) as bar:
        report = transfer.import_commands(
            chronicle, transfer.read_lines(stream), recorded_by=recorded_by,
            batch_size=batch_size, progress=bar.update,
        )
    elapsed = time.perf_counter() - started
    for number, field, message in report.problems:
        click.echo(f"{path}:{number}: {field}: {message}", err=True)
    click.echo(f"Stored {report.stored}, already present {report.unchanged}, "
               f"refused {len({p[0] for p in report.problems})} lines in {elapsed:.1f}s.")
    if report.problems:
        raise Failure(f"{len(report.problems)} problems in {path}; batches with a problem were not stored")


def _bar(path: Path) -> tqdm:
    return tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name, leave=False)


@main.command()
@click.option("--follow", is_flag=True, help="Keep following the log until interrupted.")
@click.option("--interval", default=0.2, show_default=True, help="Seconds between polls when following.")
@click.argument("names", nargs=-1)
def project(follow: bool, interval: float, names: tuple[str, ...]) -> None:
    """Bring projections (all, or those named) up to date with the event log."""
    projector = _projector(names)
    with tqdm(total=projector.lag(), unit="ev", desc="project") as bar:
        applied = projector.catch_up(progress=bar.update)
    click.echo(f"Applied {applied} events; projections at position {projector.position()}.")
    if follow:
        click.echo("Following the log; Ctrl-C stops.")
        try:
            projector.follow(interval=interval)
        except KeyboardInterrupt:
            pass


@main.command()
@click.option("--check", is_flag=True, help="Rebuild into scratch tables and compare with the live ones.")
@click.argument("names", nargs=-1)
def replay(check: bool, names: tuple[str, ...]) -> None:
    """Drop and rebuild projections (all, or those named) from position 0."""
    chronicle = open_chronicle()
    try:
        checked = len(by_name(names or None))
    except KeyError as error:
        raise Failure(error.args[0]) from None
    total = (chronicle.recorder.max_notification_id() or 0) * (checked if check else 1)
    started = time.perf_counter()
    with tqdm(total=total, unit="ev", desc="check" if check else "replay") as bar:
        if check:
            found = differences(chronicle, names or None, progress=bar.update)
        else:
            replayed = _projector(names, chronicle).rebuild(progress=bar.update)
    elapsed = time.perf_counter() - started
    if check:
        for line in found:
            click.echo(line, err=True)
        if found:
            raise Failure(f"{len(found)} tables differ from a clean rebuild")
        click.echo(f"Projections equal a clean rebuild ({elapsed:.1f}s).")
        return
    click.echo(f"Replayed {replayed} events in {elapsed:.1f}s ({replayed / max(elapsed, 1e-9):,.0f} events/s).")


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup(path: Path) -> None:
    """A consistent copy of the whole store while it runs (SQLite backup API or pg_dump)."""
    try:
        click.echo(transfer.backup(open_chronicle(), path))
    except RecordError as error:
        raise Failure(str(error)) from None


@main.command()
def verify() -> None:
    """Check the stored events against the tamper-evidence hash chain."""
    chronicle = open_chronicle()
    problem, verified = verify_chain(chronicle)
    if problem:
        raise Failure(f"tampering found at {problem} ({verified} events before it verified)")
    click.echo(f"{verified} stored events match their hash chain.")
    unchained = _projector(("chain",), chronicle).lag()
    if unchained:  # e.g. a copied log: "0 match" alone read as a clean bill for all of it
        click.echo(f"{unchained} later events are not in the chain yet, so not verified; "
                   "`timeline project` chains them as they are now.")


def _projector(names: tuple[str, ...], chronicle: Chronicle | None = None) -> Projector:
    try:
        return Projector(chronicle or open_chronicle(), names or None)
    except KeyError as error:
        raise Failure(error.args[0]) from None


@main.group()
def token() -> None:
    """Manage bearer tokens for writers (only their hashes are stored)."""


@token.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["reader", "historian", "admin"]), default="historian", show_default=True)
def token_create(name: str, role: str) -> None:
    """Create a token NAME and print it (the only time it is shown)."""
    from timeline.tokens import TokenError, Tokens

    try:
        secret = Tokens(_projector(()).view).create(name, role)
    except TokenError as error:
        raise Failure(str(error)) from None
    click.echo(secret)


@token.command("revoke")
@click.argument("name")
def token_revoke(name: str) -> None:
    """Revoke the token NAME."""
    from timeline.tokens import Tokens

    if not Tokens(_projector(()).view).revoke(name):
        raise Failure(f"no active token named {name!r}")
    click.echo(f"Revoked {name}.")


@token.command("list")
def token_list() -> None:
    """List tokens (names, roles, dates; never the tokens)."""
    from timeline.tokens import Tokens

    for row in Tokens(_projector(()).view).listing():
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        click.echo(f"{row['name']}\t{row['role']}\t{row['created_at']}\t{state}")


WORKERS = len(os.sched_getaffinity(0)) + 1
"""One worker more than cores: a worker's Python runs on one core at a time, and while
its group of writes commits another's can run. On 2 cores, alternated under 32 writers,
3 workers gave 1,145-1,160 writes/s where 2 gave 1,007 (and 1,051 against 952)."""
THREADS = 16
"""A writer's thread waits while its group commits, so a worker has more threads than
cores: under 32 writers, 16 gave 953-1,091 writes/s where 8 gave 862-928."""


def port_taken(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be served, if it cannot. Workers that each listen with
    ``SO_REUSEPORT`` would share a port silently with another server listening so (a
    second ``timeline serve``), and each answer half its requests; a socket without the
    flag, as this probe is, cannot bind it while any server listens there. The probe
    takes the address family gunicorn takes for ``host``."""
    import socket

    from gunicorn.util import is_ipv6

    try:
        with socket.socket(socket.AF_INET6 if is_ipv6(host) else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn: TIME_WAIT is no obstacle
            probe.bind((host, port))
    except OSError as error:
        return error.strerror or str(error)
    return None


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on. Each worker binds it, so not 0, which would give each a port of its own.")
@click.option("--workers", default=WORKERS, show_default=True, type=click.IntRange(min=1),
              help="Worker processes (cores + 1).")
@click.option("--threads", default=THREADS, show_default=True, type=click.IntRange(min=1),
              help="Threads per worker (gthread); writers wait on their group's commit, so more threads than cores.")
@click.option("--timeout", default=60, show_default=True, type=click.IntRange(min=0),
              help="Seconds before a silent worker is restarted (0: never).")
@click.option("--reuse-port/--no-reuse-port", default=True, show_default=True,
              help="Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads new "
                   "connections over them; with one shared socket, one worker took all of a client's "
                   "keep-alive connections.")
def serve(host: str, port: int, workers: int, threads: int, timeout: int, reuse_port: bool) -> None:
    """Serve the API and web page with gunicorn (gthread workers)."""
    from gunicorn.app.base import BaseApplication

    from api.access_log import ACCESS_LOG_FORMAT, AccessLog
    from api.settings import SettingError, from_environment

    try:  # fail early, in one line, on a setting or a store the workers could not use
        from_environment()
    except SettingError as error:
        raise Failure(str(error)) from None
    taken = port_taken(host, port)
    if taken is not None:
        raise Failure(f"cannot listen on {host}:{port}: {taken}")
    open_chronicle().close()

    def say_where(arbiter: Any) -> None:
        """gunicorn names the sockets its master listens on, none when the workers bind
        their own: the log says where they listen."""
        if reuse_port:
            arbiter.log.info("Workers listening at: http://%s:%s, each on its own socket", host, port)

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
                               "worker_class": "gthread", "timeout": timeout, "reuse_port": reuse_port,
                               "accesslog": "-", "access_log_format": ACCESS_LOG_FORMAT,
                               "logger_class": AccessLog, "when_ready": say_where,
                               # gunicorn's control socket has one path per user: every server
                               # on the machine (tests, benchmarks) took it from the one before
                               "control_socket_disable": True}.items():
                self.cfg.set(key, value)

        def load(self):
            return worker_app()

    Server().run()


def worker_app():
    """The app of one gunicorn worker, made after the fork, its start-up objects frozen."""
    from api import create_app
    from timeline.service import freeze_startup_objects

    app = create_app()
    freeze_startup_objects()
    return app


if __name__ == "__main__":
    main()
