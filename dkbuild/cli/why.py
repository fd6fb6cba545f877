from __future__ import annotations

import click

from dkbuild.cli.common import (
    complete_labels,
    emit_json,
    fail_pattern,
    load_workspace_graph,
)
from dkbuild.graph.labels import PatternError


@click.command("why")
@click.argument("target", shell_complete=complete_labels)
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def why_command(ctx: click.Context, target: str, output: str) -> None:
    """Explain why TARGET is not a cache hit: what changed since its last build here."""
    from dkbuild.api import compute_keys
    from dkbuild.engine.build import BuildOptions, LocalStore, plan
    from dkbuild.engine.rules import load_rules
    from dkbuild.graph.affected import explain
    from dkbuild.graph.keys import KeyComponents
    from dkbuild.graph.select import select

    loaded = load_workspace_graph(ctx, output)
    try:
        matched = select(loaded.graph, [target], loaded.current_package)
    except PatternError as exc:
        fail_pattern(exc, output)
    if len(matched) != 1:
        raise click.UsageError(f"{target} names {len(matched)} targets; `dkb why` explains one")
    (label,) = matched
    keys = compute_keys(loaded)
    store = LocalStore(loaded.workspace.root / loaded.workspace.config.cache.dir)
    actions = plan(loaded.workspace, loaded.graph, keys, load_rules(loaded.workspace), {label}, BuildOptions())
    current = actions[0].action_key if actions else None
    last = store.history.last(label)
    document: dict = {"label": label, "action_key": current, "last_action_key": last and last["action_key"],
                      "reasons": []}
    if current is None:
        document["status"] = "not-buildable"
        message = f"{label} is a {loaded.graph.nodes[label].kind}: only Transforms are built"
    elif last is None:
        document["status"] = "never-built"
        message = f"{label} has no earlier build in this workspace's cache (.dkb); build it once first"
    elif last["action_key"] == current and store.cache.lookup(current).entry is not None:
        document["status"] = "hit"
        message = f"{label} is a cache hit: nothing changed since its last build (action {current[:12]})"
    else:
        old = KeyComponents(**{k: v for k, v in last["components"].items() if k != "schema"})
        package = loaded.graph.nodes[label].package
        reasons = explain(old, keys.components[label], loaded.graph, loaded.graph, package, package)
        if old.to_json() == keys.components[label].to_json():
            document["status"] = "evicted" if last["action_key"] == current else "action-changed"
            message = (f"{label}: inputs unchanged; its cache entry is gone (evicted or corrupt)"
                       if last["action_key"] == current else
                       f"{label}: inputs unchanged, but the build action changed (dkb version or options)")
        else:
            document["status"] = "changed"
            lines = []
            for reason in reasons:
                entry = reason.to_json()
                lines.append(f"  - {reason.describe()}")
                inner = _inside_reference(reason, last, keys, loaded.graph)
                if inner:
                    entry["inside"] = [r.to_json() for r in inner]
                    lines += [f"      - {r.describe()}" for r in inner]
                document["reasons"].append(entry)
            message = f"{label} is not a cache hit; since its last build (action {last['action_key'][:12]}):\n" + \
                "\n".join(lines)
    if output == "json":
        emit_json(document)
    else:
        click.echo(message)


def _inside_reference(reason, last, keys, graph):  # type: ignore[no-untyped-def]
    """What changed inside a referenced target, from the components recorded at the last build."""
    from dkbuild.graph.affected import explain
    from dkbuild.graph.keys import KeyComponents

    ref_label = reason.detail.get("label") if reason.component == "reference" else None
    old = (last.get("references") or {}).get(ref_label or "")
    if not old or ref_label not in keys.components:
        return []
    before = KeyComponents(**{k: v for k, v in old.items() if k != "schema"})
    package = graph.nodes[ref_label].package
    return [r for r in explain(before, keys.components[ref_label], graph, graph, package, package)
            if r.component != "reference"]
