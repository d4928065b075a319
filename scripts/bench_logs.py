"""Benchmark: reading the contract's events back from the embedded chain.

Builds a fresh in-memory chain, registers ``--households`` households and commits their
readings for ``--slots`` slots (one ``commitReadings`` per slot, as a simulation does), then
times, in the same run and on the same blocks:

* the log query: eth-tester's own ``get_logs`` against the embedded chain's direct reading of
  py-evm's receipts (``ledger.chain.embedded._logs_in_range``, what ``eth_getLogs`` now runs);
* the decoding: web3's ``ContractEvent.process_log`` against ``ledger.contract.event_codec``.

Prints logs per second for each and the ratios. Run: ``.venv/bin/python scripts/bench_logs.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger import open_chain
from ledger.chain.embedded import _logs_in_range
from ledger.contract.event_codec import event_decoders
from tests.world import SLOT, new_world


def best_of(runs: int, fn: object) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=50)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3, help="repeats; the best is kept")
    args = parser.parse_args(argv)
    if args.households < 1 or args.slots < 1 or args.runs < 1:
        parser.error("--households, --slots and --runs must be at least 1")
    with open_chain("memory") as chain:
        w = new_world(chain)
        members = [w.household() for _ in range(args.households)]
        for k in range(args.slots):
            for m in members:
                m.export_Wh += 100 + k
            readings = [w.sign(m, SLOT + k, m.import_Wh, m.export_Wh) for m in members]
            w.client.commit_readings(w.operator, readings)
        tester = chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        head = int(chain.w3.eth.block_number)
        query = {"from_block": 0, "to_block": head, "address": w.client.address}
        logs = chain.w3.eth.get_logs({"address": w.client.address, "fromBlock": 0, "toBlock": head})
        n = len(logs)
        print(f"bench_logs: {n} logs in {head} blocks", file=sys.stderr)
        t_tester = best_of(args.runs, lambda: list(tester.get_logs(**query)))
        t_direct = best_of(args.runs, lambda: _logs_in_range(tester.backend.chain, (query,)))
        events = w.client.contract.events
        decoders = event_decoders(w.client.contract.abi)

        def web3_decode() -> None:
            for log in logs:
                name = decoders[bytes(log["topics"][0])].name
                getattr(events, name)().process_log(log)

        def codec_decode() -> None:
            for log in logs:
                decoders[bytes(log["topics"][0])].decode(log["topics"], bytes(log["data"]))

        t_web3 = best_of(args.runs, web3_decode)
        t_codec = best_of(args.runs, codec_decode)
    print(f"query  eth-tester get_logs      {n / t_tester:10.0f} logs/s")
    print(
        f"query  py-evm receipts (direct) {n / t_direct:10.0f} logs/s  x{t_tester / t_direct:.1f}"
    )
    print(f"decode web3 process_log         {n / t_web3:10.0f} logs/s")
    print(f"decode event_codec             {n / t_codec:10.0f} logs/s  x{t_web3 / t_codec:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
