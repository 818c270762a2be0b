"Measurement: metrics, the reward vector, the harness that writes records, load, sweeps and self-consistency replay."
