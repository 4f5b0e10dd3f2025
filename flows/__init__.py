"""Prefect flows over the engine in ``batch``; the only package that imports prefect."""
