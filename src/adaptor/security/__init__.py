"""Secrets at rest: encryption with rotatable keys and the development key file."""
