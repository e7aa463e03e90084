"""The FHIR release this server speaks."""

FHIR_VERSION = "4.3.0"  # R4B
FHIR_JSON = "application/fhir+json"
