"""Worker-contract tests: Microsoft's library worker over function_app.py (Python 3.13+)."""
