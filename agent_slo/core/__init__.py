"Settings, paths and hashes, W&B, statistics, the typed request record, and the artifacts store: the band every other band stands on; it knows nothing of models, tasks or HTTP."
