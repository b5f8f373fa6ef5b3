"""Metrics service: facts and materialised aggregates from the event stream; reach, traffic, ROI."""
