"""Logging, health and metrics routes, Prometheus metrics and OpenTelemetry traces."""
