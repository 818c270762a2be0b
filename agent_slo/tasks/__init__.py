"Benchmarks as tasks: BFCL v4, its splits, and BFCL's own checker as the judge; no prompt formatting."
