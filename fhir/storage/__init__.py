"""FHIR resource storage: tables, the repository interface and its SQL implementation."""
