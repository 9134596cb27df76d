"""Comparative study scripts; each declares a sweep and writes rows to the results store."""
