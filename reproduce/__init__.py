"""Reproduce and test the claims of "Why you shouldn't use a linear activation function"."""

__version__ = "0.1.0"
