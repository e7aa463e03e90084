"""FHIR search: the parameter registry, index extraction and request parsing."""
