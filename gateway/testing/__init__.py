"""Helpers for app teams' tests: the pytest plugin and the demo cassette recorder."""
