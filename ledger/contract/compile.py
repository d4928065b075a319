"""Compile Voisin's Solidity contracts into committed JSON artifacts.

No native ``solc`` can be installed on these machines, so py-solc-x drives solc-js through
``scripts/solc``, a launcher for ``contracts/toolchain/solc-adapter.js`` that answers
``--version`` and ``--standard-json`` the way the native binary does.

Every ``.sol`` file under ``contracts/`` (except the ``toolchain`` and ``artifacts`` folders) is
compiled in one standard-JSON run with fixed settings, and each deployable contract gets
``contracts/artifacts/<Name>.json``. The artifacts are committed so that deploying and testing
need neither Node nor a compile; ``python -m ledger.contract.compile --check`` recompiles in memory
and
fails when a committed artifact is stale.

Usage::

    python -m ledger.contract.compile          # (re)write contracts/artifacts/*.json
    python -m ledger.contract.compile --check  # exit 1 and list stale artifacts
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Final, TypedDict, cast

import solcx
from solcx.exceptions import SolcError

from ledger.errors import LedgerError

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
CONTRACTS_DIR: Final = REPO_ROOT / "contracts"
ARTIFACTS_DIR: Final = CONTRACTS_DIR / "artifacts"
SOLC_BINARY: Final = REPO_ROOT / "scripts" / "solc"
SOLC_JS_PACKAGE: Final = REPO_ROOT / "node_modules" / "solc" / "package.json"

# Folders that may sit among the sources but hold no contracts to compile.
EXCLUDED_DIRS: Final = frozenset({"toolchain", "artifacts", "node_modules"})

# The settings are fixed, not configurable, so that the committed bytecode is reproducible on
# every machine. Changing one changes every artifact: run scripts/compile and commit the result.
OPTIMIZER_ENABLED: Final = True
# 200 is solc's default: the usual trade-off between deployment cost and per-call cost.
OPTIMIZER_RUNS: Final = 200
# Pinned rather than left to the compiler's default, which moves to newer forks between
# releases; bytecode for an older fork keeps running on chains that enable newer ones.
EVM_VERSION: Final = "cancun"
# The IR pipeline: the settlement path passes many values per fill, which the legacy code
# generator cannot keep within the EVM's 16 reachable stack slots ("stack too deep"), and IR's
# optimiser also spends less gas per fill. Under solc-js it compiles in about 16 s, and only
# scripts/compile and the recompile test pay that: artifacts are committed.
VIA_IR: Final = True

OUTPUT_SELECTION: Final = ("abi", "evm.bytecode.object", "evm.deployedBytecode.object")

_ARTIFACT_NAME = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


class CompileError(LedgerError):
    """The contracts could not be compiled: compiler errors, or a missing toolchain."""


class Artifact(TypedDict):
    """One deployable contract, as stored in ``contracts/artifacts/<contractName>.json``.

    Keys are camelCase because they are the JSON file's keys. ``bytecode`` and
    ``deployedBytecode`` are 0x-prefixed hex; a library reference not yet linked shows up as a
    ``__$...$__`` placeholder.
    """

    contractName: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployedBytecode: str
    compiler: str
    settings: dict[str, Any]
    sourceHash: str


def compiler_settings() -> dict[str, Any]:
    """Return the fixed compiler settings (without the output selection), as a fresh dict."""
    return {
        "optimizer": {"enabled": OPTIMIZER_ENABLED, "runs": OPTIMIZER_RUNS},
        "evmVersion": EVM_VERSION,
        "viaIR": VIA_IR,
    }


def find_sources(sources_dir: Path = CONTRACTS_DIR) -> dict[str, Path]:
    """Map each source unit name (POSIX path relative to ``sources_dir``) to its file."""
    sources: dict[str, Path] = {}
    for path in sorted(sources_dir.rglob("*.sol")):
        relative = path.relative_to(sources_dir)
        folders = relative.parts[:-1]
        if any(part in EXCLUDED_DIRS or part.startswith(".") for part in folders):
            continue
        if path.is_file():
            sources[relative.as_posix()] = path
    return sources


def _read_sources(sources: Mapping[str, Path]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for name, path in sources.items():
        try:
            texts[name] = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CompileError(f"{path}: not valid UTF-8 ({exc})") from exc
    return texts


def source_hash(texts: Mapping[str, str]) -> str:
    """SHA-256 over the source unit names and contents, in name order."""
    digest = hashlib.sha256()
    for name in sorted(texts):
        data = texts[name].encode("utf-8")
        # Length-prefixed so that no two different source sets can produce the same stream.
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _check_toolchain(solc_binary: Path) -> None:
    if not solc_binary.is_file() or not os.access(solc_binary, os.X_OK):
        raise CompileError(f"{solc_binary} is missing or not executable")
    if solc_binary.resolve() != SOLC_BINARY.resolve():
        return
    if shutil.which("node") is None:
        raise CompileError("node is not on PATH; install Node.js 20, then run scripts/install")
    if not SOLC_JS_PACKAGE.is_file():
        raise CompileError(f"solc-js is missing ({SOLC_JS_PACKAGE.parent}); run scripts/install")


@cache
def compiler_version(solc_binary: Path = SOLC_BINARY) -> str:
    """Return the compiler's ``<version>+commit.<hash>``.

    The platform suffix (``Emscripten.clang`` for solc-js) is left out: a native build of the
    same commit emits the same bytecode, so it should not make artifacts differ.
    """
    _check_toolchain(solc_binary)
    try:
        return str(solcx.wrapper.get_solc_version(solc_binary, with_commit_hash=True))
    except (OSError, SolcError) as exc:
        raise CompileError(f"cannot get the compiler version from {solc_binary}: {exc}") from exc


def _report_diagnostics(errors: Sequence[Mapping[str, Any]]) -> list[str]:
    """Print warnings and infos to stderr; return the formatted errors."""
    fatal: list[str] = []
    for entry in errors:
        text = str(entry.get("formattedMessage") or entry.get("message", "")).rstrip()
        if entry.get("severity") == "error":
            fatal.append(text)
        else:
            print(text, file=sys.stderr)
    return fatal


def _run_compiler(texts: Mapping[str, str], sources_dir: Path, solc_binary: Path) -> dict[str, Any]:
    input_json = {
        "language": "Solidity",
        # Contents, not paths, go in: metadata (and hence bytecode) then depends only on the
        # relative source names, not on where the checkout lives.
        "sources": {name: {"content": text} for name, text in texts.items()},
        "settings": {
            **compiler_settings(),
            "outputSelection": {"*": {"*": list(OUTPUT_SELECTION)}},
        },
    }
    base = sources_dir.resolve()
    try:
        output: dict[str, Any] = solcx.compile_standard(
            input_json, solc_binary=solc_binary, base_path=base, allow_paths=[base]
        )
    except SolcError as exc:
        if exc.error_dict:
            # Annotated as a dict in py-solc-x, but it holds the output's "errors" list.
            fatal = _report_diagnostics(cast(list[dict[str, Any]], exc.error_dict))
            raise CompileError("\n\n".join(fatal) or exc.message) from exc
        # The adapter itself failed; its stdin would be the whole input JSON, so leave it out.
        raise CompileError(
            f"{exc.message} (exit code {exc.return_code})\n{exc.stderr_data or ''}".rstrip()
        ) from exc
    except json.JSONDecodeError as exc:
        raise CompileError(f"{solc_binary} printed output that is not JSON: {exc}") from exc
    except OSError as exc:
        raise CompileError(f"cannot run {solc_binary}: {exc}") from exc
    _report_diagnostics(output.get("errors", []))
    return output


def compile_contracts(
    sources_dir: Path = CONTRACTS_DIR, *, solc_binary: Path = SOLC_BINARY
) -> dict[str, Artifact]:
    """Compile every source under ``sources_dir`` and return the artifacts by contract name.

    Only contracts with bytecode get an artifact: interfaces and abstract contracts cannot be
    deployed. Nothing is written; see :func:`write_artifacts`. Warnings go to stderr.

    Raises:
        CompileError: on any compiler error (the formatted messages, with file and line), when
            no sources exist, when two contracts share a name, or when node / solc-js is
            missing.
    """
    sources = find_sources(sources_dir)
    if not sources:
        raise CompileError(f"no .sol files under {sources_dir}")
    texts = _read_sources(sources)
    version = compiler_version(solc_binary)
    output = _run_compiler(texts, sources_dir, solc_binary)
    digest = source_hash(texts)

    artifacts: dict[str, Artifact] = {}
    defined_in: dict[str, str] = {}
    for unit in sorted(output.get("contracts", {})):
        for name, data in sorted(output["contracts"][unit].items()):
            bytecode = data["evm"]["bytecode"]["object"]
            if not bytecode:
                continue
            if name in artifacts:
                raise CompileError(
                    f"contract {name} is defined in both {defined_in[name]} and {unit}; "
                    "artifact file names need unique contract names"
                )
            defined_in[name] = unit
            artifacts[name] = Artifact(
                contractName=name,
                abi=data["abi"],
                bytecode="0x" + bytecode,
                deployedBytecode="0x" + data["evm"]["deployedBytecode"]["object"],
                compiler=version,
                settings=compiler_settings(),
                sourceHash=digest,
            )
    return artifacts


def render_artifact(artifact: Artifact) -> str:
    """The committed file's exact text: sorted keys and one item a line, so diffs stay small."""
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def _is_artifact_file(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "contractName" in data


def write_artifacts(
    artifacts: Mapping[str, Artifact], artifacts_dir: Path = ARTIFACTS_DIR
) -> list[Path]:
    """Write the artifacts and delete those of contracts that no longer exist.

    Unchanged files are left untouched. Returns the paths written.
    """
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, artifact in sorted(artifacts.items()):
        path = artifacts_dir / f"{name}.json"
        text = render_artifact(artifact)
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        # Written aside and renamed, so a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=artifacts_dir, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(path)
    for path in sorted(artifacts_dir.glob("*.json")):
        # Only files that look like artifacts: anything else in the folder is someone's.
        if path.stem not in artifacts and _is_artifact_file(path):
            path.unlink()
    return written


def load_artifact(name: str, artifacts_dir: Path = ARTIFACTS_DIR) -> Artifact:
    """Read the committed artifact of contract ``name``.

    Raises:
        ValueError: ``name`` is not a contract name.
        FileNotFoundError: no such artifact (run scripts/compile).
    """
    if not _ARTIFACT_NAME.match(name):
        raise ValueError(f"not a contract name: {name!r}")
    path = artifacts_dir / f"{name}.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"no artifact {path}; run scripts/compile") from None
    artifact: Artifact = json.loads(text)
    return artifact


def _committed_artifacts(artifacts_dir: Path) -> dict[str, Any]:
    committed: dict[str, Any] = {}
    for path in sorted(artifacts_dir.glob("*.json")):
        try:
            committed[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            committed[path.stem] = None  # unreadable counts as stale
    return committed


def check_artifacts(
    sources_dir: Path = CONTRACTS_DIR,
    artifacts_dir: Path = ARTIFACTS_DIR,
    *,
    solc_binary: Path = SOLC_BINARY,
) -> list[str]:
    """Recompile in memory; return the sorted names whose committed artifact is stale.

    Stale means missing, extra (its contract is gone), or different in any field: abi,
    bytecode, compiler, settings or source hash.
    """
    fresh = compile_contracts(sources_dir, solc_binary=solc_binary)
    committed = _committed_artifacts(artifacts_dir)
    names = set(fresh) | set(committed)
    return sorted(name for name in names if fresh.get(name) != committed.get(name))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the artifacts, or with ``--check`` report stale ones.

    Exit status: 0 on success, 1 when ``--check`` finds stale artifacts, 2 when the contracts
    do not compile.
    """
    parser = argparse.ArgumentParser(
        prog="python -m ledger.contract.compile",
        description="Compile contracts/*.sol into contracts/artifacts/<Name>.json.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="recompile in memory and exit 1 if a committed artifact is stale; write nothing",
    )
    args = parser.parse_args(argv)

    started = time.monotonic()
    try:
        if args.check:
            stale = check_artifacts()
        else:
            artifacts = compile_contracts()
    except CompileError as exc:
        print(f"compile failed:\n{exc}", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started

    if args.check:
        if stale:
            print("stale artifacts (run scripts/compile and commit):", file=sys.stderr)
            for name in stale:
                print(f"  {name}", file=sys.stderr)
            return 1
        print(f"artifacts are up to date ({elapsed:.1f}s)")
        return 0

    written = write_artifacts(artifacts)
    shown = ARTIFACTS_DIR.relative_to(REPO_ROOT)
    print(
        f"{len(artifacts)} contracts compiled, {len(written)} artifacts written to {shown} "
        f"({elapsed:.1f}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
