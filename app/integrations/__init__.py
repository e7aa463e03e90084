"""EHR integrations: hospitals backed by an upstream FHIR server, and each application's own
credentials for it, sealed under a key derived from the application's client secret."""
