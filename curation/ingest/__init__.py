"""Readers: turn input files (local or s3://) into Documents, quarantining bad records."""
