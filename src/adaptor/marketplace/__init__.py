"""The marketplace: connector templates, the catalogue, the setup wizard, installs, ratings
and usage analytics."""
