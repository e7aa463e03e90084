# The `fhir.resources` distribution installs a regular package `fhir/` in site-packages.
# Extending the path lets `fhir.resources` import beside this project's own `fhir.*`.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)
