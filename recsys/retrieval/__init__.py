"""Candidate retrieval: sources, the quota merge, and the retrieval stage."""
