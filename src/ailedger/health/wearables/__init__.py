"""Wearable-data import: Apple Health, Open mHealth and FHIR readings, checked and deduplicated."""
