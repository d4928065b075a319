"""The embedded chain as a local JSON-RPC node: its own process, reached over loopback HTTP.

``voisin serve`` runs the embedded chain this way (``VOISIN_CHAIN_PROCESS``, on by default).
py-evm executes about 8 ms of interpreted EVM per committed reading; in the API's own process
that work holds the interpreter while clients wait for answers. In a child process it runs on
the other core, and the API process only sends transactions and reads receipts, exactly as it
does with anvil or any other node. The chain is the same
:class:`ledger.chain.embedded.EmbeddedChain` on the same files, opened by the same
:func:`ledger.chain.embedded.open_embedded` as ``open_chain`` opens it in process: nothing
changes on disk, and a data directory opens either way.

The parent starts the node with :func:`start_node` and gets a :class:`NodeProcess` (its URL
and ``stop``). The node dies with its parent, even when the parent is killed with SIGKILL:
the kernel sends it SIGKILL too (``PR_SET_PDEATHSIG``), and a watchdog thread also exits when
the parent pid changes. Its writes are durable per block (fsync) before it answers, as in
process, so a kill of either process loses nothing that was acknowledged.

The node speaks standard JSON-RPC 2.0 (numbers as 0x-hex quantities, camelCase fields,
reverts as error code 3 with the revert data), so any web3 client can use it. It listens on
127.0.0.1 only and has no accounts: every transaction arrives signed. It serves the public
``eth_`` methods only (:func:`allowed`): eth-tester's testing methods, such as
``evm_revert``, would let any local user rewrite the ledger. It serves only the client that
presents the bearer token its parent chose (:data:`TOKEN_ENV`; none when run by hand), and
refuses a body over :data:`MAX_RPC_BODY_BYTES` or nested deeper than
:data:`MAX_RPC_JSON_DEPTH` before parsing it.

Run by hand: ``python -m ledger.chain.node --data-dir DIR [--port P]``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

from hexbytes import HexBytes
from web3 import Web3
from web3.datastructures import AttributeDict
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from ledger.chain import children
from ledger.errors import ChainUnavailable
from ledger.jsonscan import json_depth_problem, pin_recursion_limit

#: How long the parent waits for the node to open its chain and listen.
START_TIMEOUT_S: Final = 60.0
#: JSON-RPC error code for a revert (as geth and anvil answer).
REVERT_CODE: Final = 3
_READY_PREFIX: Final = "voisin-node listening on "
#: The node's scheduling niceness (0 is normal, 19 the lowest priority).
NICENESS: Final = 10
#: The operator key, when the parent was given one, reaches the node through its environment
#: (never its command line, which other users can read).
OPERATOR_KEY_ENV: Final = "VOISIN_NODE_OPERATOR_KEY"
#: The bearer token the parent chose for this node, through the environment too: only a
#: client that presents it is served, so other local users cannot drive the node's port.
TOKEN_ENV: Final = "VOISIN_NODE_TOKEN"
#: The largest request body the node reads (bytes): a batch of web3 requests is far smaller.
MAX_RPC_BODY_BYTES: Final = 16 * 1024 * 1024
#: The deepest JSON a request may nest: web3's requests nest a few levels at most, and the
#: check (:func:`ledger.jsonscan.json_depth_problem`) runs before the parser recurses.
MAX_RPC_JSON_DEPTH: Final = 64


# ───────────────────────────── The node (child side) ─────────────────────────────


def to_json_rpc(value: Any) -> Any:
    """web3's Python form of a result, back to JSON-RPC's: ints as 0x quantities, bytes as hex."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, (bytes, bytearray, HexBytes)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (Mapping, AttributeDict)):
        return {str(k): to_json_rpc(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [to_json_rpc(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__} as JSON-RPC")


def allowed(method: str) -> bool:
    """Whether the node serves ``method``: the public ``eth_`` API, without the methods that
    would sign or send for an account the node holds (it holds none), and nothing of
    eth-tester's testing API (``evm_revert``, ``evm_reset``... would rewrite the ledger)."""
    if method in _NET_METHODS:
        return True
    return method.startswith("eth_") and method not in _ACCOUNT_METHODS


_NET_METHODS: Final = frozenset({"net_version", "net_listening", "web3_clientVersion"})
_ACCOUNT_METHODS: Final = frozenset(
    {
        "eth_accounts",
        "eth_sendTransaction",
        "eth_sign",
        "eth_signTransaction",
        "eth_signTypedData",
        "eth_signTypedData_v4",
    }
)


def answer(w3: Web3, request: Any) -> dict[str, Any] | None:
    """The JSON-RPC response to one request object (``None`` for a notification)."""
    if not isinstance(request, dict) or not isinstance(request.get("method"), str):
        return _error(None, -32600, "invalid request: expected an object with a 'method'")
    rid = request.get("id")
    if not allowed(request["method"]):
        return _error(rid, -32601, f"method {request['method']!r} is not served by this node")
    params = request.get("params", [])
    if not isinstance(params, list):
        return _error(rid, -32602, "params must be a list")
    try:
        result = w3.manager.request_blocking(request["method"], params)
    except ContractCustomError as exc:
        data = exc.data if isinstance(exc.data, str) else None
        return _error(rid, REVERT_CODE, "execution reverted", data)
    except ContractLogicError as exc:
        data = exc.data if isinstance(exc.data, str) else None
        return _error(rid, REVERT_CODE, str(exc.message or exc), data)
    except Web3RPCError as exc:
        rpc = exc.rpc_response or {}
        err = rpc.get("error") if isinstance(rpc, dict) else None
        if isinstance(err, dict):
            return _error(rid, int(err.get("code", -32000)), str(err.get("message", exc)))
        return _error(rid, -32000, str(exc))
    except (ValueError, TypeError, KeyError) as exc:
        return _error(rid, -32602, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # the node must answer, not die, on a request it cannot serve
        return _error(rid, -32603, f"{type(exc).__name__}: {exc}")
    if rid is None and "id" not in request:
        return None
    return {"jsonrpc": "2.0", "id": rid, "result": to_json_rpc(result)}


def _error(rid: Any, code: int, message: str, data: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": rid, "error": error}


def parse_request_body(body: bytes) -> Any:
    """The JSON of a request body, or the JSON-RPC error object that refuses it: not UTF-8,
    nested deeper than :data:`MAX_RPC_JSON_DEPTH` (checked before the parser recurses) or not
    JSON at all."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return _error(None, -32700, "parse error: the body is not UTF-8")
    problem = json_depth_problem(body, MAX_RPC_JSON_DEPTH)
    if problem is not None:
        return _error(None, -32700, f"parse error: {problem[1]}")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return _error(None, -32700, "parse error: the body is not JSON")


def _handler(w3: Web3, token: str | None) -> type[BaseHTTPRequestHandler]:
    expected = None if token is None else f"Bearer {token}"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: one connection per client thread
        # Headers and body go out in two writes; with Nagle's algorithm the second waits for
        # the client's delayed ACK (40 ms a call on Linux).
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            if expected is not None and self.headers.get("Authorization") != expected:
                self.close_connection = True
                self._reply(401, _error(None, -32001, "unauthorized: this node serves its parent"))
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_RPC_BODY_BYTES:
                # The body is left unread: the connection closes after the answer.
                self.close_connection = True
                self._reply(
                    413,
                    _error(None, -32700, f"a request body is at most {MAX_RPC_BODY_BYTES} bytes"),
                )
                return
            body = parse_request_body(self.rfile.read(length))
            reply: Any
            if isinstance(body, dict) and "error" in body and body.get("jsonrpc") == "2.0":
                reply = body
            elif isinstance(body, list):
                reply = [r for r in (answer(w3, item) for item in body) if r is not None]
            else:
                reply = answer(w3, body)
            self._reply(200, reply)

        def _reply(self, status: int, reply: Any) -> None:
            payload = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per RPC call would drown the serve log

    return Handler


def _die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies, and also exit when the
    parent pid changes (the parent may have died before the request took effect)."""
    children.signal_when_parent_dies(signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(0)
            time.sleep(0.5)

    threading.Thread(target=watch, name="voisin-node-watchdog", daemon=True).start()


def run_node(data_dir: Path, port: int, parent: int | None) -> None:
    """Open the embedded chain in ``data_dir`` and serve it on 127.0.0.1:``port``."""
    # Only the node's own process opens the chain: the parent, which imports this module for
    # start_node, never loads py-evm.
    from ledger.chain.embedded import open_embedded

    if parent is not None:
        _die_with_parent(parent)
    # Below the API's priority: when both want the CPU, requests go first and the EVM work
    # (committing readings, settling) waits; alone, the node still gets a whole core.
    os.nice(NICENESS)
    opened = open_embedded(data_dir, os.environ.pop(OPERATOR_KEY_ENV, None) or None)
    # py_ecc (loaded with the chain's libraries) raised the limit to 100,000 at import; with
    # it that high a deep body would crash the process instead of raising RecursionError.
    pin_recursion_limit()
    chain = opened.chain
    token = os.environ.pop(TOKEN_ENV, None) or None
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(chain.w3, token))
    server.daemon_threads = True

    def stop(_signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"{_READY_PREFIX}http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        chain.close()


# ───────────────────────────── The parent side ─────────────────────────────


@dataclass
class NodeProcess:
    """A running node: its URL, whether it is alive, :meth:`restart` and :meth:`stop`."""

    url: str
    process: subprocess.Popen[str]
    data_dir: Path
    operator_key: str | None = field(default=None, repr=False)
    #: The bearer token the node serves (see :data:`TOKEN_ENV`).
    token: str = field(default="", repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def headers(self) -> dict[str, str]:
        """The headers a client of this node sends with every request."""
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def restart(self) -> None:
        """Start the node again on the same port (after it died), so clients keep its URL."""
        self.stop()
        again = start_node(self.data_dir, self.operator_key, port=self.port, token=self.token)
        self.process, self._stopped = again.process, False

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the node (SIGTERM: it finishes the request in hand and closes the store)."""
        if self._stopped:
            return
        self._stopped = True
        children.stop(self.process, timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_node(
    data_dir: Path,
    operator_key: str | None = None,
    *,
    port: int = 0,
    timeout: float = START_TIMEOUT_S,
    token: str | None = None,
) -> NodeProcess:
    """Start the embedded chain of ``data_dir`` as a node process; return once it listens.

    ``port`` 0 lets the node pick a free one. A relative ``data_dir`` is taken in this
    process's working directory: the node gets it as an absolute path, since it runs in
    another one. Raises :class:`ChainUnavailable` (with the last line of
    ``<data_dir>/node.log``) when it does not come up, e.g. when another process holds the data
    directory.
    """
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if operator_key:
        env[OPERATOR_KEY_ENV] = operator_key
    token = token or secrets.token_urlsafe(32)
    env[TOKEN_ENV] = token
    log_path = data_dir / "node.log"
    command = [
        sys.executable,
        "-m",
        "ledger.chain.node",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--parent",
        str(os.getpid()),
    ]
    with open(log_path, "a", encoding="utf-8") as log:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            # Its own session: a Ctrl-C in the terminal reaches the parent only, which then
            # stops the node after its own last transaction (stop()).
            start_new_session=True,
        )
    assert process.stdout is not None
    ready: list[str] = []
    reader = threading.Thread(
        target=lambda: ready.append(process.stdout.readline() if process.stdout else ""),
        daemon=True,
    )
    reader.start()
    reader.join(timeout)
    line = ready[0].strip() if ready else ""
    if not line.startswith(_READY_PREFIX):
        if process.poll() is None:
            process.kill()
        process.wait()
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
        raise ChainUnavailable(
            f"the embedded chain node for {data_dir} did not start"
            + (f": {tail[-1]}" if tail else "")
            + f" (log: {log_path})"
        )
    return NodeProcess(line[len(_READY_PREFIX) :], process, data_dir, operator_key, token)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ledger.chain.node",
        description="Serve the embedded chain of a data directory as a JSON-RPC node on 127.0.0.1.",
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        run_node(args.data_dir, args.port, args.parent)
    except ChainUnavailable as exc:
        print(f"voisin-node: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
