"""Adaptor Service: connects the conversational platform to external systems."""

__version__ = "0.1.0"
