"""Qorgau's BPM core: SpiffWorkflow execution persisted with SQLAlchemy.

No Flask, no HTTP here (see README.md in this folder).
"""
