"""WebDataset shards: writing, reading and per-unit statistics."""
