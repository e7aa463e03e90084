"""Vaccines (CVX) with their route and dose, and where they are given."""

from __future__ import annotations

from datetime import date

from fhir.sandbox.terminology import THO

_IM = ("IM", "Injection, intramuscular")
_SC = ("SC", "Injection, subcutaneous")
_PO = ("PO", "Swallow, oral")
ROUTE_SYSTEM = THO + "v3-RouteOfAdministration"
SITE_SYSTEM = THO + "v3-ActSite"
# code -> (display, route, dose in mL)
VACCINES: dict[str, tuple[str, tuple[str, str], float]] = {
    "140": ("Influenza, seasonal, injectable, preservative free", _IM, 0.5),
    "08": ("Hep B, adolescent or pediatric", _IM, 0.5),
    "20": ("DTaP", _IM, 0.5),
    "10": ("IPV", _SC, 0.5),
    "49": ("Hib (PRP-OMP)", _IM, 0.5),
    "119": ("rotavirus, monovalent", _PO, 1.0),
    "133": ("Pneumococcal conjugate PCV 13", _IM, 0.5),
    "03": ("MMR", _SC, 0.5),
    "21": ("varicella", _SC, 0.5),
    "83": ("Hep A, ped/adol, 2 dose", _IM, 0.5),
    "115": ("Tdap", _IM, 0.5),
    "62": ("HPV, quadrivalent", _IM, 0.5),
    "114": ("meningococcal MCV4P", _IM, 0.5),
    "113": ("Td (adult) preservative free", _IM, 0.5),
    "187": ("zoster vaccine recombinant", _IM, 0.5),
    "33": ("pneumococcal polysaccharide vaccine, 23 valent", _IM, 0.5),
    "208": (
        "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose",
        _IM,
        0.3,
    ),
    "207": (
        "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 100 mcg/0.5mL dose",
        _IM,
        0.5,
    ),
}
INJECTION_SITES = (("LA", "left arm"), ("RA", "right arm"), ("LT", "left thigh"), ("RT", "right thigh"))
COVID_VACCINES_FROM = date(2021, 1, 4)
