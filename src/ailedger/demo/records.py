"""Synthetic FHIR R4 records for the demo: made up here, never real patients.

Each Bundle holds a Patient with identifiers a de-identifier must remove (name, MRN,
phone, address, exact birth date), HPO-coded Observations, a treating clinician (the
matchmaking contact) and Consent resources for research and matchmaking.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

HPO_SYSTEM = "http://purl.obolibrary.org/obo/hp.owl"
COMMON_TERMS = [
    "HP:0001250",
    "HP:0001263",
    "HP:0000252",
    "HP:0004322",
    "HP:0000486",
    "HP:0001252",
    "HP:0002650",
    "HP:0000365",
    "HP:0001631",
    "HP:0000175",
    "HP:0000316",
    "HP:0000369",
]
# A Kabuki-syndrome-like presentation: the case the second hospital is looking for.
RARE_CASE = [
    "HP:0000175",
    "HP:0000316",
    "HP:0000369",
    "HP:0004322",
    "HP:0001263",
    "HP:0000486",
    "HP:0001252",
]
FIRST = ["Ada", "Grace", "Alan", "Marie", "Emmy", "Niels", "Lise", "Kurt"]
LAST = ["Lovelace", "Hopper", "Turing", "Curie", "Noether", "Bohr", "Meitner", "Goedel"]


def write_bundles(directory: Path, count: int, seed: int = 7) -> list[Path]:
    """``count`` Bundles in ``directory``; the last one is the rare case."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        terms = RARE_CASE if n == count - 1 else rng.sample(COMMON_TERMS, 4)
        path = directory / f"bundle-{n:03d}.json"
        path.write_text(json.dumps(_bundle(n, terms, rng)))
        paths.append(path)
    return paths


def _bundle(n: int, terms: list[str], rng: random.Random) -> dict[str, Any]:
    pid = f"pat-{n}"
    patient = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": "urn:mrn", "value": f"MRN{100000 + n}"}],
        "name": [{"family": rng.choice(LAST), "given": [rng.choice(FIRST)]}],
        "telecom": [{"system": "phone", "value": f"+1-555-01{n:02d}"}],
        "gender": rng.choice(["female", "male"]),
        "birthDate": f"{rng.randint(2005, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "address": [
            {
                "line": [f"{n} Main St"],
                "city": "Springfield",
                "postalCode": f"{rng.randint(100, 999)}{rng.randint(10, 99)}",
            }
        ],
        "generalPractitioner": [{"reference": "Practitioner/dr-1"}],
        "managingOrganization": {"reference": "Organization/hosp-1"},
    }
    resources: list[dict[str, Any]] = [
        patient,
        {
            "resourceType": "Practitioner",
            "id": "dr-1",
            "name": [{"family": "Okafor", "given": ["Nneka"]}],
            "telecom": [{"system": "email", "value": "genetics@hospital-a.example.org"}],
        },
        {"resourceType": "Organization", "id": "hosp-1", "name": "Hospital A Genetics"},
    ]
    for k, term in enumerate(terms):
        resources.append(
            {
                "resourceType": "Observation",
                "id": f"obs-{n}-{k}",
                "status": "final",
                "code": {"coding": [{"system": HPO_SYSTEM, "code": term}]},
                "subject": {"reference": f"Patient/{pid}"},
                "valueBoolean": True,
            }
        )
    for purpose in ("research", "matchmaking"):
        resources.append(
            {
                "resourceType": "Consent",
                "id": f"consent-{n}-{purpose}",
                "status": "active",
                "scope": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                            "code": "research",
                        }
                    ]
                },
                "category": [{"coding": [{"system": "http://loinc.org", "code": "57016-8"}]}],
                "patient": {"reference": f"Patient/{pid}"},
                "provision": {
                    "type": "permit",
                    "purpose": [{"system": "http://example.org/ailedger/consent", "code": purpose}],
                },
            }
        )
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:uuid:{r['resourceType']}-{r['id']}", "resource": r} for r in resources
        ],
    }
