"""The Solidity toolchain: committed artifacts, the solc-js adapter, and compile errors.

These tests run solc-js (through scripts/solc), so they need node and node_modules/solc.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import solcx
from packaging.version import Version

from ledger.contract.compile import (
    ARTIFACTS_DIR,
    CONTRACTS_DIR,
    SOLC_BINARY,
    SOLC_JS_PACKAGE,
    CompileError,
    check_artifacts,
    compile_contracts,
    compiler_settings,
    find_sources,
    load_artifact,
    write_artifacts,
)

pytestmark = pytest.mark.solc

HEADER = "// SPDX-License-Identifier: AGPL-3.0-or-later\npragma solidity ^0.8.24;\n"

THROWAWAY = {
    "Meter.sol": HEADER
    + 'import "./lib/Units.sol";\n'
    + "interface IMeter { function total() external view returns (uint256); }\n"
    + "abstract contract MeterBase is IMeter { uint256 internal wh; }\n"
    + "contract Meter is MeterBase {\n"
    + "    function record(uint256 kwh) external { wh += Units.toWh(kwh); }\n"
    + "    function total() external view returns (uint256) { return wh; }\n"
    + "}\n",
    "lib/Units.sol": HEADER
    + "library Units {\n"
    + "    function toWh(uint256 kwh) internal pure returns (uint256) { return kwh * 1000; }\n"
    + "}\n",
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_committed_artifacts_match_a_fresh_recompile() -> None:
    if not find_sources(CONTRACTS_DIR):
        pytest.skip("no contracts/*.sol yet")
    stale = check_artifacts(CONTRACTS_DIR, ARTIFACTS_DIR)
    assert stale == [], f"stale artifacts {stale}: run scripts/compile and commit"
    for path in ARTIFACTS_DIR.glob("*.json"):
        artifact = load_artifact(path.stem)
        assert artifact["settings"] == compiler_settings()
        assert path.read_text(encoding="utf-8").endswith("}\n")


def test_adapter_answers_version_like_native_solc() -> None:
    # From another directory: the launcher must find the repo and its node_modules itself.
    result = subprocess.run(
        [str(SOLC_BINARY), "--version"], cwd="/", capture_output=True, text=True, check=True
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "solc, the solidity compiler commandline interface"
    assert re.fullmatch(r"Version: \d+\.\d+\.\d+\+commit\.[0-9a-f]{8}\.\S+", lines[1])

    pinned = json.loads(SOLC_JS_PACKAGE.read_text(encoding="utf-8"))["version"]
    assert solcx.wrapper.get_solc_version(SOLC_BINARY) == Version(pinned)


def test_throwaway_contracts_compile_write_and_check(tmp_path: Path) -> None:
    sources = write_tree(tmp_path / "src", THROWAWAY)
    artifacts_dir = tmp_path / "artifacts"

    artifacts = compile_contracts(sources)

    # The interface and the abstract contract have no bytecode, so no artifact.
    assert sorted(artifacts) == ["Meter", "Units"]
    meter = artifacts["Meter"]
    assert set(meter) == {
        "contractName",
        "abi",
        "bytecode",
        "deployedBytecode",
        "compiler",
        "settings",
        "sourceHash",
    }
    assert meter["contractName"] == "Meter"
    assert {item["name"] for item in meter["abi"]} == {"record", "total"}
    assert re.fullmatch(r"0x[0-9a-f]+", meter["bytecode"])
    assert re.fullmatch(r"0x[0-9a-f]+", meter["deployedBytecode"])
    assert meter["settings"] == {
        "optimizer": {"enabled": True, "runs": 200},
        "evmVersion": "cancun",
        "viaIR": True,
    }

    write_artifacts(artifacts, artifacts_dir)
    text = (artifacts_dir / "Meter.json").read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    assert load_artifact("Meter", artifacts_dir) == meter
    assert check_artifacts(sources, artifacts_dir) == []

    # A changed source, a deleted artifact and an extra artifact are all reported.
    meter_sol = sources / "Meter.sol"
    meter_sol.write_text(meter_sol.read_text().replace("kwh * 1000", "kwh * 1001"))
    (sources / "lib/Units.sol").write_text(
        (sources / "lib/Units.sol").read_text().replace("1000", "1001")
    )
    (artifacts_dir / "Units.json").unlink()
    (artifacts_dir / "Gone.json").write_text(text.replace('"Meter"', '"Gone"'))
    assert check_artifacts(sources, artifacts_dir) == ["Gone", "Meter", "Units"]


def test_warnings_go_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = HEADER + "contract Noisy {\n    function f() external pure { uint256 unused; }\n}\n"
    sources = write_tree(tmp_path, {"Noisy.sol": source})

    assert list(compile_contracts(sources)) == ["Noisy"]
    assert "Unused local variable" in capsys.readouterr().err


def test_broken_source_raises_compile_error_with_file_and_line(tmp_path: Path) -> None:
    broken = HEADER + "contract Broken {\n    function f() external { uint256 x = ; }\n}\n"
    sources = write_tree(tmp_path, {"Broken.sol": broken})

    with pytest.raises(CompileError) as raised:
        compile_contracts(sources)
    assert "ParserError" in str(raised.value)
    assert "Broken.sol:4:" in str(raised.value)


def test_import_outside_the_allowed_paths_is_refused(tmp_path: Path) -> None:
    outside = write_tree(tmp_path / "outside", {"Secret.sol": HEADER + "contract Secret {}\n"})
    importer = HEADER + f'import "{outside / "Secret.sol"}";\ncontract Main {{}}\n'
    sources = write_tree(tmp_path / "src", {"Main.sol": importer})

    with pytest.raises(CompileError) as raised:
        compile_contracts(sources)
    assert "File outside of allowed directories" in str(raised.value)
    assert "Main.sol:3:" in str(raised.value)


def test_adapter_reads_urls_only_inside_allowed_paths(tmp_path: Path) -> None:
    # crytic-compile's standard-JSON mode names sources by path ("urls") rather than content.
    inside = write_tree(tmp_path / "work", {"A.sol": HEADER + "contract A {}\n"})
    outside = write_tree(tmp_path / "elsewhere", {"B.sol": HEADER + "contract B {}\n"})

    def run(url: Path, *args: str) -> dict[str, object]:
        request = {
            "language": "Solidity",
            "sources": {url.name: {"urls": [str(url)]}},
            "settings": {"outputSelection": {"*": {"*": ["abi"]}}},
        }
        result = subprocess.run(
            [str(SOLC_BINARY), "--standard-json", "--allow-paths", ".", *args],
            cwd=inside,
            input=json.dumps(request),
            capture_output=True,
            text=True,
            check=True,
        )
        output: dict[str, object] = json.loads(result.stdout)
        return output

    accepted = run(inside / "A.sol")
    assert "errors" not in accepted
    assert accepted["contracts"] == {"A.sol": {"A": {"abi": []}}}

    refused = run(outside / "B.sol")
    assert "contracts" not in refused
    assert "File outside of allowed directories" in json.dumps(refused["errors"])

    # Unknown flags, such as those callers pass to native solc, are ignored safely.
    assert "errors" not in run(inside / "A.sol", "--optimize", "--evm-version", "cancun")
