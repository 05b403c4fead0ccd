"""The operator's pipeline: knowledge/ -> load -> validate -> clean -> chunk -> embed -> Chroma."""
