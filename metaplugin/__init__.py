"""The jaring meta CNI plugin: one pod, many networks (NPWG v1.3).

Reads the pod and its NADs, turns the selection annotation into attachments,
delegates each in order with rollback, caches what it did for DEL, and
writes network-status. Imports only `jaring.cni` and the standard library on
the hot path.
"""
