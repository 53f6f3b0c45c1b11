"""Real ``redis-server`` processes on free loopback ports, for tests and benchmarks.

:class:`RedisServer` runs one server in a temporary directory, with the
configuration a fault needs (an append-only file, ``maxmemory`` and an
eviction policy, renamed or disabled commands), and injects the faults a
shared lease store must survive: a crash (``kill``), a restart with or without
persistence, replacement by an empty server on the same port, ``FLUSHALL``,
and memory pressure from filler keys. :class:`RedisCluster` builds a Redis
Cluster of several masters on loopback. Both clean up after themselves, wait
for a bounded time only, and never listen beyond 127.0.0.1.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from dni_engine.extras import MissingExtra

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.cluster import RedisCluster as ClusterClient
    from redis.retry import Retry
except ImportError as exc:
    raise MissingExtra("dni_engine.testing.redis_server", "testing", exc.name) from exc

from dni_engine.errors import DniError

__all__ = [
    "RedisCluster",
    "RedisServer",
    "RedisServerError",
    "free_cluster_port",
    "free_port",
    "redis_server_path",
]

CLUSTER_SLOTS = 16384
CLUSTER_BUS_OFFSET = 10_000  # a cluster node also listens on port + 10000


class RedisServerError(DniError):
    """A test Redis server could not be started or did not become ready."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_cluster_port() -> int:
    """A free port whose cluster bus port (``+ 10000``, at most 65535) is free too."""
    for _ in range(200):
        port = free_port()
        if port + CLUSTER_BUS_OFFSET > 65_535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port + CLUSTER_BUS_OFFSET))
            except OSError:
                continue
        return port
    raise RedisServerError("no free port pair for a cluster node on 127.0.0.1")


def redis_server_path() -> str:
    """The ``redis-server`` executable, or :class:`RedisServerError` if it is not installed."""
    path = shutil.which("redis-server")
    if path is None:
        raise RedisServerError("redis-server is not installed (Debian package 'redis-server')")
    return path


class RedisServer:
    """One ``redis-server`` on 127.0.0.1, started by :meth:`start`.

    The port is chosen when the object is made (``port``, or a free one), so
    :attr:`url` can be handed out before the server runs: build what connects
    to it, then :meth:`start` it later on that port. Nothing listens there in
    between (another process could in principle take a free port meanwhile;
    on loopback with ephemeral ports that is rare enough for tests).

    Configuration, written to ``redis.conf`` in the data directory at every
    start (the server never saves snapshots):

    * ``appendonly`` turns on the append-only file, synced with
      ``appendfsync`` (``always`` by default, so a killed server restarts with
      every acknowledged write; ``everysec`` or ``no`` may lose the last ones);
    * ``maxmemory`` (bytes, or Redis units such as ``"4mb"``) and
      ``maxmemory_policy`` (``noeviction``, ``allkeys-lru``, ``volatile-lru``...)
      make the server evict keys when full;
    * ``rename_commands`` maps a command to its new name, ``""`` to disable it
      (``{"CONFIG": ""}`` is a managed Redis that refuses ``CONFIG``);
    * ``config`` adds any other directive (name to value), after the rest.

    Faults: :meth:`kill` (SIGKILL, as a crash), :meth:`stop` (a clean
    shutdown), :meth:`restart` (the same port and data directory: only an
    append-only file brings data back), :meth:`restart_empty` (an empty server
    in a new data directory on the same port, as a failover to an empty
    replica), :meth:`flushall` and :meth:`fill` (filler keys, as a cache
    sharing the server). :meth:`close` stops the process and removes every
    data directory this object made.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        appendonly: bool = False,
        appendfsync: str = "always",
        maxmemory: int | str | None = None,
        maxmemory_policy: str | None = None,
        rename_commands: Mapping[str, str] | None = None,
        config: Mapping[str, str] | None = None,
        cluster: bool = False,
        directory: Path | None = None,
    ) -> None:
        self.port = port or (free_cluster_port() if cluster else free_port())
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.maxmemory = maxmemory
        self.maxmemory_policy = maxmemory_policy
        self.rename_commands = dict(rename_commands or {})
        self.config = dict(config or {})
        self.cluster = cluster
        self._own_dir = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="dni-redis-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._filled: dict[str, int] = {}

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else ``None``."""
        return self._process.pid if self.running and self._process is not None else None

    def _directives(self) -> list[tuple[str, ...]]:
        """The configuration file's lines, as (directive, arguments...)."""
        lines: list[tuple[str, ...]] = [
            ("port", str(self.port)),
            ("bind", "127.0.0.1"),
            ("protected-mode", "yes"),
            ("dir", str(self.directory)),
            ("save", ""),
            ("daemonize", "no"),
            ("loglevel", "warning"),
            ("logfile", str(self.directory / "redis.log")),
        ]
        if self.appendonly:
            lines += [("appendonly", "yes"), ("appendfsync", self.appendfsync)]
        if self.maxmemory is not None:
            lines.append(("maxmemory", str(self.maxmemory)))
        if self.maxmemory_policy is not None:
            lines.append(("maxmemory-policy", self.maxmemory_policy))
        for command, name in self.rename_commands.items():
            lines.append(("rename-command", command, name))
        if self.cluster:
            lines += [
                ("cluster-enabled", "yes"),
                ("cluster-config-file", str(self.directory / "nodes.conf")),
                ("cluster-node-timeout", "2000"),
            ]
        lines += [(name, value) for name, value in self.config.items()]
        return lines

    def _write_config(self) -> Path:
        path = self.directory / "redis.conf"
        text = "".join(
            " ".join((name, *(_quoted(arg) for arg in args))) + "\n"
            for name, *args in self._directives()
        )
        path.write_text(text)
        return path

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait (at most ``timeout`` seconds) until it answers.

        It is ready once this process (not another one on the port) answers ``INFO``.

        Raises :class:`RedisServerError`, leaving no process behind, if it
        exits (the port is taken, a bad directive) or does not answer in time.
        """
        if self.running:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        self._process = subprocess.Popen(
            [redis_server_path(), str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_connect_timeout=0.2,
            socket_timeout=0.5,
            retry=Retry(NoBackoff(), 0),  # this loop is the retry
        )
        try:
            while True:
                if self._process.poll() is not None:
                    self._process = None
                    raise RedisServerError(
                        f"redis-server on port {self.port} exited: {self._log_tail()}"
                    )
                try:
                    if self._answers(client, self._process.pid):
                        return self
                except (redis.exceptions.BusyLoadingError, redis.exceptions.ConnectionError):
                    pass
                if time.monotonic() > deadline:
                    self.kill()
                    raise RedisServerError(f"redis-server on port {self.port} did not start")
                time.sleep(0.02)
        finally:
            client.close()

    @staticmethod
    def _answers(client: redis.Redis, pid: int) -> bool:
        """True if the server answering on the port is process ``pid`` (not another one)."""
        try:
            info = client.info("server")
        except redis.exceptions.ResponseError:  # INFO renamed away: PING is all there is
            return bool(client.ping())
        return int(info["process_id"]) == pid

    def _log_tail(self) -> str:
        log = self.directory / "redis.log"
        return log.read_text(errors="replace")[-500:] if log.exists() else "(no log)"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash would; its data directory stays."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def stop(self) -> None:
        """Stop the server cleanly (SIGTERM; SIGKILL after 10 s); its data directory stays.

        Without ``appendonly`` nothing is saved: the next start is empty.
        """
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None

    def restart(self, *, kill: bool = False, timeout: float = 10.0) -> RedisServer:
        """Stop the server (SIGKILL with ``kill``) and start it on the same port and directory.

        With ``appendonly`` the data comes back from the append-only file;
        without it the server restarts empty (no persistence).
        """
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start(timeout)

    def restart_empty(self, *, kill: bool = False, timeout: float = 10.0) -> RedisServer:
        """Replace the server by an empty one on the same port, in a new data directory.

        The old process is stopped (SIGKILL with ``kill``) and its data
        directory removed if this object made it, so nothing comes back, even
        with ``appendonly``: the same address now answers with no keys, as
        after a failover to an empty replica.
        """
        if kill:
            self.kill()
        else:
            self.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = Path(tempfile.mkdtemp(prefix="dni-redis-"))
        self._own_dir = True
        return self.start(timeout)

    def flushall(self) -> None:
        """Delete every key of every database (``FLUSHALL``), as an operator's mistake would."""
        with self.client() as client:
            client.flushall()

    def fill(self, total_bytes: int, *, value_bytes: int = 4096, prefix: str = "filler") -> int:
        """Write about ``total_bytes`` of filler keys ``<prefix>:<n>``; return how many.

        Keys without a TTL, written in pipelined batches and never read again,
        as a cache sharing the server would write them. Numbering continues
        across calls with the same prefix, so each call writes new keys. Under
        ``maxmemory`` with an ``allkeys-*`` policy they push older keys out;
        under ``noeviction`` a full server refuses them (``OutOfMemoryError``).
        """
        count = max(1, -(-total_bytes // value_bytes))
        first = self._filled.get(prefix, 0)
        value = b"x" * value_bytes
        with self.client() as client:
            for low in range(first, first + count, 256):
                pipe = client.pipeline(transaction=False)
                for n in range(low, min(low + 256, first + count)):
                    pipe.set(f"{prefix}:{n}", value)
                pipe.execute()
        self._filled[prefix] = first + count
        return count

    def client(self, **kwargs: object) -> redis.Redis:
        """A client connected to this server."""
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop the server and remove its data directory (if this object made it)."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _quoted(value: str) -> str:
    """``value`` as one argument of a Redis configuration file line."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class RedisCluster:
    """A Redis Cluster of ``masters`` servers on loopback, slots split evenly."""

    def __init__(self, masters: int = 3) -> None:
        self.servers = [RedisServer(cluster=True) for _ in range(masters)]

    def start(self, timeout: float = 20.0) -> RedisCluster:
        """Start every node, join them, assign the slots and wait for ``cluster_state:ok``."""
        for server in self.servers:
            server.start()
        with self.servers[0].client() as first:
            for server in self.servers[1:]:
                first.execute_command("CLUSTER", "MEET", "127.0.0.1", server.port)
        share = CLUSTER_SLOTS // len(self.servers)
        for index, server in enumerate(self.servers):
            low = index * share
            high = CLUSTER_SLOTS - 1 if index == len(self.servers) - 1 else low + share - 1
            with server.client() as node:
                node.execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
        deadline = time.monotonic() + timeout
        while True:
            states = []
            for server in self.servers:
                with server.client(decode_responses=True) as node:
                    info = node.execute_command("CLUSTER", "INFO")
                states.append("cluster_state:ok" in info)
            if all(states):
                return self
            if time.monotonic() > deadline:
                raise RedisServerError("the test Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.05)

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every node."""
        return [("127.0.0.1", s.port) for s in self.servers]

    def client(self, **kwargs: object) -> ClusterClient:
        """A cluster-aware client."""
        return ClusterClient(host="127.0.0.1", port=self.servers[0].port, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop every node and remove their data."""
        for server in self.servers:
            server.close()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
