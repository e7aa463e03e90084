"""HL7 FHIR definition data (see README.md) and the script that refreshes it."""
