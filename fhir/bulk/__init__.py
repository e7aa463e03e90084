"""FHIR Bulk Data Access 2.0 ``$export``: kick-off, durable jobs, workers, ndjson files.

A kick-off (``views.py``) checks the request (``kickoff.py``) and stores a job (``jobs.py``);
a worker (``worker.py``, ``fhirgate worker``) claims it, streams each type's resources from one
database snapshot into ndjson files (``runner.py``) kept behind a small storage interface
(``storage.py``); the status URL then lists them and the client downloads them with its token.
"""
