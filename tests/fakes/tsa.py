"""A local RFC 3161 timestamp authority for tests: the openssl program behind loopback HTTP."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

OPENSSL = shutil.which("openssl")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([OPENSSL or "openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_tsa(folder: Path) -> Path:
    """A CA and a TSA certificate signed by it; returns the ``openssl ts`` config file."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=Test CA",
        "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    _openssl(*["req", *ec, "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=Test TSA"],
             cwd=folder)  # fmt: skip
    (folder / "ext.cnf").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=critical,timeStamping\n"
    )
    _openssl(
        "x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "tsa.crt", "-days", "2", "-extfile", "ext.cnf",
        cwd=folder,
    )  # fmt: skip
    (folder / "serial").write_text("01\n")
    config = folder / "ts.cnf"
    config.write_text(
        f"""[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {folder}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/ca.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""
    )
    return config


class _TsaHandler(BaseHTTPRequestHandler):
    config: Path
    folder: Path
    lock = threading.Lock()

    def do_POST(self) -> None:
        if self.path == "/not-a-tsa":
            self._send(b"<html>hello</html>")
            return
        if self.path != "/tsa":
            self.send_error(404)
            return
        if self.headers.get("Content-Type") != "application/timestamp-query":
            self.send_error(415, "expected application/timestamp-query")
            return
        query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.lock:  # one serial file: one reply at a time
            (self.folder / "q.tsq").write_bytes(query)
            result = subprocess.run(
                [OPENSSL or "openssl", "ts", "-reply", "-config", str(self.config),
                 "-queryfile", "q.tsq", "-out", "r.tsr"],
                cwd=self.folder, capture_output=True, check=False,
            )  # fmt: skip
            body = (self.folder / "r.tsr").read_bytes() if result.returncode == 0 else b""
        if not body:
            self.send_error(500, "openssl could not reply")
            return
        self._send(body)

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output quiet


@contextmanager
def local_tsa(folder: Path) -> Iterator[tuple[str, Path]]:
    """Run a TSA in ``folder``; yields (URL, CA certificate path)."""
    handler = type("Handler", (_TsaHandler,), {"config": make_tsa(folder), "folder": folder})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/tsa", folder / "ca.crt"
    finally:
        server.shutdown()
        server.server_close()
