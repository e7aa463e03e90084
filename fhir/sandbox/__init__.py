"""Synthetic, deterministic sandbox data: realistic clinical records, every resource valid R4B.

``generate`` yields the resources of a population; ``transaction_bundles`` packs them into
idempotent transaction Bundles for loading.
"""

from fhir.sandbox.bundles import transaction_bundles
from fhir.sandbox.generator import generate

__all__ = ["generate", "transaction_bundles"]
