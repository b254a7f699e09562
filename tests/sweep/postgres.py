"""A real PostgreSQL server on loopback for the sweep tests (Debian's postgresql: initdb, postgres).

initdb refuses to run as root, so as root the server runs as the 'postgres' user the package
creates. The server listens on a free port of 127.0.0.1 with trust authentication, in a folder
that is removed afterwards."""

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.conftest import free_port


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class Server:
    """initdb + postgres -D on a free port; ``url`` for SQLAlchemy (psycopg 3)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin, self.port = bin_dir, free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="cnnlab-pg-"))
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.folder, "postgres")
        data = self.folder / "data"
        self._run([str(self.bin / "initdb"), "-D", str(data), "-U", "cnnlab", "--auth=trust", "-E", "UTF8"])
        self.process = subprocess.Popen(
            [*self.as_user, str(self.bin / "postgres"), "-D", str(data), "-p", str(self.port), "-h", "127.0.0.1",
             "-k", str(self.folder), "-c", "fsync=off"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("PostgreSQL did not start")
            time.sleep(0.2)
        self.url = f"postgresql+psycopg://cnnlab@127.0.0.1:{self.port}/postgres"

    def _run(self, command: list[str]) -> None:
        subprocess.run([*self.as_user, *command], check=True, capture_output=True, text=True)

    def create_database(self, name: str) -> str:
        self._run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "cnnlab", name])
        return f"postgresql+psycopg://cnnlab@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)
