"""Synthetic FHIR R4 patients full of identifiers, for import and de-identification tests.

``synth_bundle`` makes a realistic transaction-free collection Bundle for one patient: names,
addresses, phones, e-mails, MRN/SSN/insurance identifiers, exact dates, relatives
(RelatedPerson), an employer (Patient.contact with an Organization), a clinician, narrative
text, extensions, attachments, HPO/OMIM coded conditions and observations, a gene finding and
consents. ``canary`` seeds a recognisable string into every one of those places.
"""

from __future__ import annotations

import random
from typing import Any

HPO = [
    "HP:0001250",
    "HP:0001263",
    "HP:0000252",
    "HP:0001508",
    "HP:0004322",
    "HP:0000486",
    "HP:0001290",
    "HP:0002650",
    "HP:0000365",
    "HP:0001631",
]
OMIM = ["616439", "605751", "300672", "613721", "176270"]
GENES = [
    ("HGNC:1100", "BRCA1"),
    ("HGNC:7881", "NOTCH3"),
    ("HGNC:11998", "TP53"),
    ("HGNC:3603", "FBN1"),
    ("HGNC:9588", "PTEN"),
]
FIRST = ["Ada", "Grace", "Alan", "Linus", "Marie", "Rosalind", "Niels", "Emmy", "Kurt", "Lise"]
LAST = ["Lovelace", "Hopper", "Turing", "Pauling", "Curie", "Franklin", "Bohr", "Noether"]
HPO_SYS = "http://purl.obolibrary.org/obo/hp.owl"
XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def synth_bundle(n: int, rng: random.Random, canary: str = "") -> dict[str, Any]:
    """One patient's Bundle; ``canary`` (if given) is embedded in every identifying place."""
    c = canary
    pid = f"pat-{n}{c}"
    ref = {"reference": f"Patient/{pid}", "display": f"{rng.choice(FIRST)} {c}name"}
    year = rng.randint(1925, 2020)
    bdate = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    zipc = f"{rng.randint(1, 999):03d}{rng.randint(0, 99):02d}"
    phone = f"+1-617-555-{rng.randint(0, 9999):04d}"
    ext = [
        {"url": f"http://example.org/ext/{c}vehicle", "valueString": f"VIN1HGCM{n}{c}vin"},
        {"url": "http://example.org/ext/ip", "valueString": f"192.0.2.{n % 250}{c}ip"},
    ]
    person = {
        "name": [
            {
                "use": "official",
                "family": rng.choice(LAST) + c,
                "given": [rng.choice(FIRST), f"{c}middle"],
                "text": f"{rng.choice(FIRST)} {c}fullname",
            }
        ],
        "telecom": [
            {"system": "phone", "value": phone + c},
            {"system": "fax", "value": f"{c}fax"},
            {"system": "email", "value": f"p{n}{c}@mail.example.org"},
            {"system": "url", "value": f"https://home.example.org/{c}url"},
        ],
        "address": [
            {
                "use": "home",
                "line": [f"{rng.randint(1, 999)} Main St {c}street"],
                "city": f"Springfield{c}city",
                "district": f"{c}county",
                "state": "MA",
                "postalCode": zipc + (f"-{c}zip" if c else ""),
            }
        ],
    }
    patient = {
        "resourceType": "Patient",
        "id": pid,
        "text": {"status": "generated", "div": f"<div {XHTML}>Patient {c}narrative</div>"},
        "extension": ext,
        "identifier": [
            {"system": "http://hospital.example.org/mrn", "value": f"MRN{n:08d}{c}mrn"},
            {"system": "http://hl7.org/fhir/sid/us-ssn", "value": f"{n:09d}{c}ssn"},
            {"system": "http://example.org/plan", "value": f"HP-{n}{c}plan"},
            {"system": "http://example.org/account", "value": f"ACC{n}{c}account"},
            {"system": "http://example.org/license", "value": f"DL{n}{c}license"},
            {"type": {"text": f"fingerprint {c}biometric"}, "value": f"FP{n}{c}biometric"},
        ],
        **person,
        "gender": rng.choice(["male", "female"]),
        "birthDate": bdate,
        "photo": [
            {
                "contentType": "image/jpeg",
                "data": _b64(f"face {c}photo"),
                "url": f"https://img.example.org/{c}photo.jpg",
                "title": f"{c}phototitle",
            }
        ],
        "contact": [
            {
                "relationship": [{"text": "employer"}],
                "name": {"text": f"Boss {c}employer"},
                "telecom": [{"system": "phone", "value": f"555-0100{c}employerphone"}],
                "organization": {
                    "reference": f"Organization/emp-{n}",
                    "display": f"Acme {c}employerorg",
                },
            }
        ],
        "generalPractitioner": [{"reference": f"Practitioner/dr-{n}"}],
        "managingOrganization": {"reference": f"Organization/hosp-{n}"},
    }
    if rng.random() < 0.1 or canary:
        patient["deceasedDateTime"] = f"{min(year + 80, 2024)}-03-04T10:00:00Z"
    pref = {"reference": f"Patient/{pid}"}
    sub = {**ref}
    res: list[dict[str, Any]] = [patient]
    res.append(
        {
            "resourceType": "RelatedPerson",
            "id": f"rel-{n}",
            "patient": pref,
            "relationship": [{"text": f"mother {c}relative"}],
            **person,
            "identifier": [{"value": f"{c}relssn"}],
            "birthDate": "1950-05-06",
        }
    )
    res.append(
        {
            "resourceType": "Organization",
            "id": f"emp-{n}",
            "name": f"Acme {c}employer",
            "telecom": [{"system": "phone", "value": f"{c}orgphone"}],
        }
    )
    res.append({"resourceType": "Organization", "id": f"hosp-{n}", "name": "General Hospital"})
    res.append(
        {
            "resourceType": "Practitioner",
            "id": f"dr-{n}",
            "name": [{"given": ["Greg"], "family": "House"}],
            "telecom": [{"system": "email", "value": "house@hospital.example.org"}],
        }
    )
    res.append(
        {
            "resourceType": "Encounter",
            "id": f"enc-{n}",
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "IMP",
                "display": f"{c}encdisplay",
            },
            "identifier": [{"value": f"VISIT{n}{c}account"}],
            "subject": sub,
            "period": {"start": "2021-02-03T08:00:00Z", "end": "2021-02-09T17:30:00Z"},
            "location": [{"location": {"display": f"Room 4 {c}location"}}],
        }
    )
    for k, term in enumerate(rng.sample(HPO, 4)):
        absent = k == 3
        res.append(
            {
                "resourceType": "Observation",
                "id": f"obs-{n}-{k}",
                "status": "final",
                "text": {"status": "generated", "div": f"<div {XHTML}>{c}obsnarrative</div>"},
                "code": {
                    "coding": [{"system": HPO_SYS, "code": term, "display": f"{c}hpodisplay"}],
                    "text": f"{c}codetext",
                },
                "subject": sub,
                "effectiveDateTime": "2021-02-04T09:15:00Z",
                "valueBoolean": not absent,
                "note": [{"text": f"seen by Dr X {c}note"}],
                "device": {"display": f"SN-{n}{c}device"},
                "extension": [{"url": "http://example.org/x", "valueString": f"{c}obsext"}],
            }
        )
    res.append(
        {
            "resourceType": "Observation",
            "id": f"gene-{n}",
            "status": "final",
            "code": {
                "coding": [
                    {
                        "system": "http://loinc.org",
                        "code": "48018-6",
                        "display": f"Gene studied {c}loincdisplay",
                    }
                ]
            },
            "subject": sub,
            "valueCodeableConcept": {
                "coding": [
                    {
                        "system": "http://www.genenames.org/geneId",
                        "code": GENES[n % 5][0],
                        "display": GENES[n % 5][1],
                    }
                ]
            },
        }
    )
    res.append(
        {
            "resourceType": "Condition",
            "id": f"cond-{n}",
            "verificationStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": "confirmed",
                    }
                ]
            },
            "code": {
                "coding": [
                    {
                        "system": "https://omim.org",
                        "code": OMIM[n % 5],
                        "display": f"{c}omimdisplay",
                    },
                    {
                        "system": "http://snomed.info/sct",
                        "code": "123456789",
                        "display": f"{c}snomeddisplay",
                    },
                ],
                "text": f"{c}condtext",
            },
            "subject": sub,
            "onsetDateTime": "2019-11-12",
            "note": [{"text": f"{c}condnote"}],
        }
    )
    res.append(
        {
            "resourceType": "DocumentReference",
            "id": f"doc-{n}",
            "status": "current",
            "subject": sub,
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain",
                        "data": _b64(f"discharge letter {c}attach"),
                        "title": f"{c}attachtitle",
                        "url": f"https://docs.example.org/{c}docurl",
                    }
                }
            ],
        }
    )
    res.append(
        {
            "resourceType": "Device",
            "id": f"dev-{n}",
            "patient": pref,
            "serialNumber": f"SER{n}{c}serial",
            "udiCarrier": [{"deviceIdentifier": f"UDI{n}{c}udi"}],
        }
    )
    for purpose in ("HRESCH", "matchmaking"):
        res.append(
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
                "patient": pref,
                "dateTime": "2020-01-01T10:00:00Z",
                "sourceAttachment": {"data": _b64(f"signature {c}signature")},
                "provision": {
                    "type": "permit",
                    "purpose": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                            "code": purpose,
                        }
                    ],
                },
            }
        )
    return {
        "resourceType": "Bundle",
        "id": f"b-{n}",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{n}-{i}", "resource": r} for i, r in enumerate(res)],
    }
