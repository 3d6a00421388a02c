"""Test data copied from Microsoft's published packages (each file names its origin)."""
