"""Per-tenant provider settings: which providers are on, and their credentials (encrypted)."""
