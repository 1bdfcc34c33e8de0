"""The CNI protocol, standard library only.

Owns config parsing, versioned results and their conversion, error codes and
their JSON, the one entry point (`skel`) and delegate execution (`invoke`).
Everything else in jaring builds on these types (CNI SPEC.md, 1.1.0).
"""
