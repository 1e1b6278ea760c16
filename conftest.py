"""Repository-level pytest configuration.

The test fixtures live in ``tests/conftest.py``; this file only makes sure the
checkout's ``chaosrec`` package is the one imported when pytest runs from here.
"""
