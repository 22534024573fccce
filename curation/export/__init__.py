"""Exporters: write curated shards in the on-disk layouts other trainers read."""
