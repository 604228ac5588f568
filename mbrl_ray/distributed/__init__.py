"""Thin Ray shells around the plain components: actors, topology, driver."""
