"""The only place that imports Ray: turns stages into Ray Data operations."""
