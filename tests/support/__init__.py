"""Test helpers shared across test folders (local servers spoken to over real HTTP)."""
