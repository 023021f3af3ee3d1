"""Health data: patients, FHIR import, de-identification and rare-disease phenotype matching."""
