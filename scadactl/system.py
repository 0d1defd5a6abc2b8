"""Root-level commands: status, describe, call."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from scadactl.output import (
    STATE_STYLE,
    Column,
    api,
    emit_json,
    globals_of,
    parse_json_option,
    render_record,
    render_rows,
)
from scadactl.output import (
    call as api_call,
)


def _uptime(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{d}d {h}h {m}m" if d else (f"{h}h {m}m" if h else f"{m}m {s}s")


def status(ctx: typer.Context) -> None:
    """Daemon health: each subsystem's state, versions, uptime."""
    g = globals_of(ctx)
    st = api_call(g, "System.Status")
    unhealthy = any(s["state"] != "ok" for s in st["subsystems"])
    if g.json:
        emit_json(st)
        raise typer.Exit(1 if unhealthy else 0)
    if g.quiet:  # only what needs attention; the exit code says the rest
        for s in st["subsystems"]:
            if s["state"] != "ok":
                g.out.print(f"{s['name']} {s['state']}: {s['detail']}", highlight=False)
        raise typer.Exit(1 if unhealthy else 0)
    g.out.print(
        f"[bold]scadad {st['version']}[/]  site [bold]{st['site']}[/] ({st['timezone']})  "
        f"pid {st['pid']}  up {_uptime(st['uptime_s'])}  config {st['config_path'] or '<defaults>'}",
        highlight=False,
    )
    render_rows(
        g,
        st["subsystems"],
        [
            Column("name", "SUBSYSTEM"),
            Column("state", "STATE", style=lambda v: STATE_STYLE.get(v, "")),
            Column("detail", "DETAIL"),
        ],
    )
    g.out.print("[dim]" + " · ".join(f"{k} {v}" for k, v in st["versions"].items()) + "[/]", highlight=False)
    if unhealthy:
        raise typer.Exit(1)


def describe(
    ctx: typer.Context,
    method: Annotated[str | None, typer.Argument(help="show one method's parameters, e.g. Sites.Create")] = None,
) -> None:
    """The API's methods with their permission and parameters (from System.Describe)."""
    g = globals_of(ctx)
    desc = api_call(g, "System.Describe")
    methods = desc["methods"]
    if method is None:
        if g.json:
            emit_json(desc)
            return
        render_rows(
            g,
            [{**m, "params_list": ", ".join(_param_names(m["params"]))} for m in methods],
            [
                Column("name", "METHOD"),
                Column("kind", "KIND"),
                Column("permission", "PERMISSION"),
                Column("params_list", "PARAMS"),
                Column("summary", "SUMMARY"),
            ],
        )
        return
    match = next((m for m in methods if m["name"].lower() == method.lower()), None)
    if match is None:
        raise typer.BadParameter(f"no method {method!r}; `scadactl describe` lists them", param_hint="METHOD")
    if g.json:
        emit_json(match)
        return
    render_record(
        g,
        {"method": match["name"], "kind": match["kind"], "permission": match["permission"],
         "changes state": "yes" if match["mutates"] else "no", "summary": match["summary"]},
    )  # fmt: skip
    render_rows(g, _param_rows(match["params"]), [Column("name", "PARAM"), Column("type", "TYPE"),
                Column("required", "REQUIRED"), Column("default", "DEFAULT"), Column("rule", "RULE")])  # fmt: skip


def _definition(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return schema.get("$defs", {}).get(ref.split("/")[-1], {})
    return schema


def _param_names(schema: dict[str, Any]) -> list[str]:
    d = _definition(schema)
    required = set(d.get("required", []))
    return [n if n in required else f"[{n}]" for n in d.get("properties", {})]


def _type_of(prop: dict[str, Any]) -> str:
    if "type" in prop:
        return str(prop["type"])
    options = prop.get("anyOf") or prop.get("oneOf") or []
    return " | ".join(_type_of(o) for o in options) or "any"


def _param_rows(schema: dict[str, Any]) -> list[dict[str, Any]]:
    d = _definition(schema)
    required = set(d.get("required", []))
    rows = []
    for name, prop in d.get("properties", {}).items():
        flat = prop.get("anyOf", [prop])[0] if "anyOf" in prop else prop
        rule = ", ".join(f"{k}={flat[k]}" for k in ("pattern", "minimum", "maximum", "maxLength") if k in flat)
        rows.append({"name": name, "type": _type_of(prop), "required": "yes" if name in required else "",
                     "default": json.dumps(prop["default"]) if "default" in prop else "", "rule": rule})  # fmt: skip
    return rows


def call(
    ctx: typer.Context,
    method: Annotated[str, typer.Argument(help="Service.Method, e.g. System.Ping")],
    params: Annotated[str | None, typer.Option("--params", "-p", help="parameters as a JSON object")] = None,
) -> None:
    """Call any API method with raw JSON params (like grpcurl); streams print one event per line.

    A stream runs until it ends or Ctrl-C, which cancels it on the daemon.
    """
    g = globals_of(ctx)
    body = parse_json_option(params, "--params")
    if body is not None and not isinstance(body, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--params")
    with api(g) as client:
        kinds = {m["name"]: m["kind"] for m in client.call("System.Describe")["methods"]}
        if kinds.get(method) == "stream":
            client.set_timeout(None)  # runs until it ends or Ctrl-C
        try:
            for frame in client.frames(method, body):
                if "event" in frame:
                    print(json.dumps(frame["event"]) if g.json else json.dumps(frame["event"], indent=2), flush=True)
                elif "result" in frame:
                    print(json.dumps(frame["result"]) if g.json else json.dumps(frame["result"], indent=2))
                elif "error" in frame:
                    from scadad.api.errors import ScadaError

                    raise ScadaError.from_wire(frame["error"])
        except KeyboardInterrupt:
            pass
