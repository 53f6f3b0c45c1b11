"""Real ``redis-server`` processes on free loopback ports, for tests and benchmarks.

:class:`RedisServer` runs one server in a temporary directory (optionally with
``appendonly yes`` so it survives a kill and restart); :class:`RedisCluster`
builds a Redis Cluster of several masters on loopback. Both clean up after
themselves and never listen beyond 127.0.0.1.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis
from redis.cluster import RedisCluster as ClusterClient

from dni_engine.errors import DniError

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

    ``appendonly`` turns on the append-only file with ``fsync always``, so a
    killed server restarts with every acknowledged write. The data directory
    is kept across :meth:`kill`/:meth:`restart` and removed by :meth:`close`.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        appendonly: bool = False,
        cluster: bool = False,
        directory: Path | None = None,
    ) -> None:
        self.port = port or (free_cluster_port() if cluster else free_port())
        self.appendonly = appendonly
        self.cluster = cluster
        self._own_dir = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="dni-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def _args(self) -> list[str]:
        args = [
            redis_server_path(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--loglevel", "warning",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        if self.cluster:
            args += [
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(self.directory / "nodes.conf"),
                "--cluster-node-timeout", "2000",
            ]  # fmt: skip
        return args

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers ``PING``."""
        if self.running:
            return self
        self._process = subprocess.Popen(
            self._args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=0.5)
        try:
            while True:
                if self._process.poll() is not None:
                    raise RedisServerError(
                        f"redis-server on port {self.port} exited: {self._log_tail()}"
                    )
                try:
                    if client.ping():
                        return self
                except redis.exceptions.BusyLoadingError:
                    pass
                except redis.exceptions.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise RedisServerError(f"redis-server on port {self.port} did not start")
                time.sleep(0.02)
        finally:
            client.close()

    def _log_tail(self) -> str:
        log = self.directory / "redis.log"
        return log.read_text(errors="replace")[-500:] if log.exists() else "(no log)"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash would."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def stop(self) -> None:
        """Stop the server gracefully."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None

    def restart(self) -> RedisServer:
        """Start the server again on the same port and data directory."""
        self.stop()
        return self.start()

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
