"""The permission catalogue and the built-in roles: data, not code.

Every API method declares one permission from this catalogue (the registry refuses an
unknown one at start). Two pseudo-permissions are not grantable: `public` (anyone on
the socket: Ping, Login) and `self` (any logged-in user acting on their own account:
Logout, WhoAmI, changing one's own password). `scadactl role matrix` prints this table.
"""

from __future__ import annotations

PUBLIC = "public"
SELF = "self"

# name -> what it allows. Later subsystems' permissions are declared here already so
# the role matrix is complete from the first release.
CATALOGUE: dict[str, str] = {
    "system.read": "daemon status, API description, schema version",
    "system.admin": "migrations, daemon-wide settings",
    "sites.read": "read sites and equipment",
    "sites.configure": "create, change, delete sites and equipment",
    "devices.read": "read devices and their communication health",
    "devices.configure": "create, change, enable, disable devices",
    "tags.read": "read tags, live values and history",
    "tags.write": "write values to operator-writable tags",
    "tags.configure": "create, change, delete tags and scan groups",
    "alarms.read": "read alarms, their history and KPIs",
    "alarms.ack": "acknowledge and comment alarms",
    "alarms.shelve": "shelve and unshelve alarms",
    "alarms.configure": "create, change, delete alarm rules; out-of-service",
    "energy.read": "read meters, consumption, losses, targets",
    "energy.configure": "create, change meters, templates, targets",
    "workorders.read": "read work orders",
    "workorders.execute": "work on work orders assigned to oneself",
    "workorders.manage": "create, assign, close any work order",
    "reports.read": "read report definitions and history",
    "reports.run": "run a report now",
    "reports.configure": "create, change, delete scheduled reports",
    "users.admin": "users, roles, sessions, MFA resets, unlocks, API tokens",
    "audit.read": "read and verify the audit log",
}

_READ = [
    "system.read", "sites.read", "devices.read", "tags.read", "alarms.read",
    "energy.read", "workorders.read", "reports.read",
]  # fmt: skip

BUILTIN_ROLES: dict[str, tuple[str, list[str]]] = {
    "viewer": ("read everything a plant shows; change nothing", list(_READ)),
    "operator": (
        "control room: acknowledge and shelve alarms, write operator-writable tags",
        [*_READ, "alarms.ack", "alarms.shelve", "tags.write"],
    ),
    "technician": ("field work: execute work orders assigned to them", [*_READ, "workorders.execute"]),
    "engineer": (
        "configure the plant: devices, tags, alarm rules, meters, reports",
        [
            *_READ,
            "sites.configure",
            "devices.configure",
            "tags.configure",
            "tags.write",
            "alarms.ack",
            "alarms.shelve",
            "alarms.configure",
            "energy.configure",
            "workorders.execute",
            "workorders.manage",
            "reports.run",
            "reports.configure",
        ],
    ),  # fmt: skip
    "admin": ("users, roles, audit and the daemon itself (everything)", sorted(CATALOGUE)),
}


def check_permissions(perms: list[str]) -> list[str]:
    """Names that are not in the catalogue (empty when all are valid)."""
    return [p for p in perms if p not in CATALOGUE]
