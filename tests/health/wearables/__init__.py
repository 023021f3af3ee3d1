"""Tests of wearable-data import."""
