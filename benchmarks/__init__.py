"""``make bench``: the FHIR server's ingestion rate, read latency and search latency on PostgreSQL."""
