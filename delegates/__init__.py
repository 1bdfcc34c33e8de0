"""Native CNI plugins over a small rtnetlink client of our own (`rtnl.py`):
bridge, macvlan, ipvlan, host-device, sriov, and IPAM host-local and static.
Each runs in-process for the meta-plugin (through `jaring.cni.registry`) and
as its own executable.
"""
