"""Sweep files shipped with the package (package data)."""
