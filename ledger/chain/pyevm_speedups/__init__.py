"""Private speedups of py-evm, py-trie and eth-hash for the embedded chain."""
