"""Search: catalog text retrieval (BM25 and the text encoder) ahead of the decision layer."""
