"""Where the service keeps state: the database (engine, tables, migrations) and the shared
key-value store (`kv`: Redis in production, in-process when embedded)."""
