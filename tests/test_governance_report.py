"""`dkb governance report`: the model on the example monorepo and on a workspace with violations,
the JSON schema, filters, the text/markdown/html renderers, and the HTML rendered in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

from dkbuild.api import load
from dkbuild.governance.report import (
    FilterError,
    build_report,
    parse_filters,
    render,
    schema,
)
from tests.conftest import EXAMPLE, dataset, transform

PII_DATASETS = {"crm-customers", "customers", "enriched-events", "customer-profile", "clickstream", "raw-events",
                "suspicious-activity"}


def report_of(root: Path, **kwargs):  # type: ignore[no-untyped-def]
    loaded = load(root)
    return build_report(loaded.graph, loaded.workspace.config.policy, workspace=loaded.workspace.config.workspace.name,
                        **kwargs)


@pytest.fixture(scope="module")
def example():  # type: ignore[no-untyped-def]
    return report_of(EXAMPLE)


def validate(document: dict) -> None:
    jsonschema.Draft202012Validator(schema()).validate(document)


def test_example_pii_datasets_and_packages(example) -> None:
    assert {d["name"] for d in example["datasets"] if d["has_pii"]} == PII_DATASETS
    profile = next(d for d in example["datasets"] if d["name"] == "customer-profile")
    assert profile["pii_columns"][0]["column"] == "contact_email"
    assert {"dataset": "crm-customers", "column": "email"} in profile["pii_columns"][0]["sources"]
    enrich = next(p for p in example["packages"] if p["name"] == "enrich")
    assert enrich["handles_pii"] and enrich["reads"] == ["customers", "raw-events"]
    assert enrich["writes"] == ["enriched-events"] and enrich["owner"] == "web-analytics"
    assert enrich["namespace"] == "analytics" and enrich["classification"] == "restricted"
    customers = next(d for d in example["datasets"] if d["name"] == "customers")
    assert (customers["owner"], customers["owner_source"], customers["namespace"]) == ("data-platform", "producer",
                                                                                       "ingest")
    s = example["summary"]
    assert s["packages"] == 10 and s["datasets_with_pii"] == 7
    assert s["packages_with_pii"] == sum(p["handles_pii"] for p in example["packages"])


def test_example_flows_masking_into_marketing_audience(example) -> None:
    flows = example["flows"]["flows"]
    masked = [f for f in flows if f["sink"]["dataset"] == "marketing-audience"]
    assert len(masked) == 1 and masked[0]["masked"] and masked[0]["downgrade"] and masked[0]["cross_boundary"]
    assert masked[0]["source"] == {"dataset": "crm-customers", "column": "email"}
    assert masked[0]["hops"] == 4 and masked[0]["path"][-1]["via"] == "audience-export"
    assert masked[0]["path"][-1]["masking"] == "hash"
    direct = next(f for f in flows if f["sink"] == {"dataset": "customers", "column": "email"})
    assert direct["hops"] == 1 and not direct["cross_boundary"]
    assert example["summary"]["cross_boundary_flows"] == sum(f["cross_boundary"] for f in flows) > 0
    assert {"dataset": "clickstream", "column": "ip_address"} in example["flows"]["sources"]


def test_example_all_policies_pass(example) -> None:
    assert [p["status"] for p in example["policies"]] == ["pass"] * 5
    assert [p["code"] for p in example["policies"][:3]] == ["E600", "E601", "E602"]
    assert example["summary"]["compliance_percent"] == 100.0
    validate(example)


def violations_ws(workspace) -> Path:  # type: ignore[no-untyped-def]
    return workspace({
        "workspace.toml": '[workspace]\nname = "bad"\n',
        "datasets/people/dk.yaml": dataset("people", columns=[{"name": "id", "type": "integer"},
                                                              {"name": "email", "type": "string", "pii": True}]),
        "datasets/copy/dk.yaml": dataset("copy", columns=[{"name": "email", "type": "string",
                                                           "from": "people.email"}]),
        "datasets/loose/dk.yaml": {**dataset("loose"), "spec": {"store": "lake", "table": "loose",
                                                                "schema": [{"name": "id", "type": "integer"}]}},
        "pipelines/copier/dk.yaml": transform("copier", ["people"], ["copy"]),
    })


def test_violations_fail_with_files(workspace) -> None:
    report = report_of(violations_ws(workspace))
    validate(report)
    by_id = {p["id"]: p for p in report["policies"]}
    assert by_id["pii_classification"]["status"] == "fail"
    assert by_id["pii_classification"]["files"] == ["datasets/people/dk.yaml"]
    assert "people" in by_id["pii_classification"]["violations"][0]["message"]
    assert by_id["pii_propagation"]["files"] == ["datasets/copy/dk.yaml"]
    assert by_id["classification_present"]["files"] == ["datasets/loose/dk.yaml"]
    assert by_id["owner_defined"]["status"] == "fail"    # the basic transforms carry no owner/team
    assert by_id["classification_downgrade"]["status"] == "pass"
    assert report["summary"]["policies_failed"] == 4 and report["summary"]["compliance_percent"] == 20.0


def test_policy_off_and_warning(workspace) -> None:
    root = violations_ws(workspace)
    (root / "workspace.toml").write_text('[workspace]\nname = "bad"\n[policy]\npii_classification = "off"\n'
                                         'pii_propagation = "warning"\n')
    by_id = {p["id"]: p for p in report_of(root)["policies"]}
    assert by_id["pii_classification"]["status"] == "off" and not by_id["pii_classification"]["violations"]
    assert (by_id["pii_propagation"]["status"], by_id["pii_propagation"]["level"]) == ("fail", "warning")


def test_filters(example) -> None:
    pii = report_of(EXAMPLE, filters=parse_filters(["pii=true"]))
    assert {d["name"] for d in pii["datasets"]} == PII_DATASETS
    assert all(p["handles_pii"] for p in pii["packages"]) and pii["packages"]
    no_pii = report_of(EXAMPLE, filters=parse_filters(["pii=false"]))
    assert not {d["name"] for d in no_pii["datasets"]} & PII_DATASETS
    restricted = report_of(EXAMPLE, filters=parse_filters(["classification=restricted"]))
    assert {d["name"] for d in restricted["datasets"]} == {"crm-customers", "customers", "enriched-events",
                                                           "customer-profile"}
    dbt = report_of(EXAMPLE, filters=parse_filters(["runtime=dbt"]))
    assert {p["name"] for p in dbt["packages"]} == {"customer-value", "revenue-mart"}
    ns = report_of(EXAMPLE, filters=parse_filters([], namespace="analytics"))
    assert {p["name"] for p in ns["packages"]} == {"enrich", "build-profiles", "sessionize"}
    assert all(d["namespace"] == "analytics" for d in ns["datasets"])
    assert ns["scope"]["filters"] == {"namespace": "analytics"}
    for bad in (["pii"], ["colour=red"], ["pii=maybe"], ["classification=secret"]):
        with pytest.raises(FilterError):
            parse_filters(bad)
    validate(dbt)


def test_patterns_scope_and_cli_json(dkb) -> None:
    result = dkb("governance", "report", "//pipelines/crm-sync", "--output", "json", cwd=EXAMPLE)
    assert result.code == 0, result
    doc = result.json()
    validate(doc)
    assert [p["name"] for p in doc["packages"]] == ["crm-sync"]
    assert {d["name"] for d in doc["datasets"]} == {"crm-customers", "customers"}
    assert doc["scope"]["patterns"] == ["//pipelines/crm-sync"]
    bad = dkb("governance", "report", "--filter", "nope=1", cwd=EXAMPLE)
    assert bad.code == 2 and "unknown filter key" in bad.err


def test_cli_text_markdown_and_exit(dkb, workspace, tmp_path: Path) -> None:
    text = dkb("governance", "report", "--namespace", "marketing", cwd=EXAMPLE)
    assert text.code == 0, text
    assert "audience-export" in text.out and "PASS  E600" in text.out and "crm-sync" not in text.out
    out = tmp_path / "report.md"
    md = dkb("governance", "report", "--output", "markdown", "-o", str(out), cwd=EXAMPLE)
    assert md.code == 0 and md.out == ""
    body = out.read_text()
    assert "| policy | code | status |" in body and "| marketing-audience |" in body
    assert "crm-customers.email | marketing-audience.email_sha256 | 4 | yes | masked, downgrade" in body
    root = violations_ws(workspace)
    failing = dkb("governance", "report", "--fail-on-violation", cwd=root)
    assert failing.code == 1 and "FAIL  E600" in failing.out and "datasets/people/dk.yaml" in failing.out
    assert dkb("governance", "report", cwd=root).code == 0


def test_html_is_self_contained_and_deterministic(example) -> None:
    html = render(example, "html")
    assert html == render(report_of(EXAMPLE), "html")
    # one inline script (the lineage view), nothing fetched: no src/href to anywhere, no network API
    assert html.count("<script>") == 1 and "<script src" not in html and "<link" not in html
    assert not any(api in html for api in ("fetch(", "XMLHttpRequest", "import(", "WebSocket", "@import"))
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<svg" in html and 'class="edge masked"' in html
    assert html.count('class="node dataset pii"') == 7


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/system-deps.sh installs it)")
def test_html_renders_in_headless_chromium(example, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(example, "html"), encoding="utf-8")
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], check=False, capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr
    for name in ("crm-customers", "marketing-audience", "audience-export", "fraud-watch", "Policy compliance"):
        assert name in dom.stdout
    assert "<svg" in dom.stdout and 'class="node transform pii"' in dom.stdout
    shot = tmp_path / "report.png"
    run = subprocess.run([*flags, "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1400,1000",
                          page.as_uri()], check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


class LineageDom(HTMLParser):
    """What the lineage view left in the DOM: each node's and edge's classes, the viewBox, status."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.nodes: dict[str, set[str]] = {}
        self.edges: list[tuple[str, str, set[str]]] = []
        self.view: dict[str, str] = {}
        self.viewbox: list[float] = []
        self.status = ""
        self._in_status = False
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = set(a.get("class", "").split())
        if tag == "g" and "data-id" in a:
            self.nodes[a["data-id"]] = classes
        elif tag == "path" and "data-from" in a:
            self.edges.append((a["data-from"], a["data-to"], classes))
        elif tag == "div" and a.get("id") == "lineage":
            self.view = a
        elif tag == "svg" and not self.viewbox:
            self.viewbox = [float(v) for v in a["viewbox"].split()]
        self._in_status = a.get("id") == "lineage-status"

    def handle_data(self, data: str) -> None:
        if self._in_status:
            self.status += data


CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def big_report(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from bench.generate import generate

    root = tmp_path_factory.mktemp("big") / "ws"
    generate(root, 100, 0, commit=False)
    doc = report_of(root)
    page = root.parent / "report.html"
    page.write_text(render(doc, "html"), encoding="utf-8")
    return doc, page


def lineage_dom(page: Path, fragment: str, tmp_path: Path) -> LineageDom:
    assert CHROMIUM is not None, "chromium is installed by scripts/system-deps.sh"
    profile = tmp_path / f"profile-{abs(hash(fragment))}"
    dom = subprocess.run([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                          page.as_uri() + fragment], check=False, capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr
    return LineageDom(dom.stdout)


def neighbourhood(doc: dict, node: str, steps: int) -> set[str]:
    down: dict[str, set[str]] = {}
    up: dict[str, set[str]] = {}
    names = {f"d:{d['name']}" for d in doc["datasets"]} | {f"t:{p['name']}" for p in doc["packages"]}
    for p in doc["packages"]:
        for a, b in [(f"d:{d}", f"t:{p['name']}") for d in p["reads"]] + \
                    [(f"t:{p['name']}", f"d:{d}") for d in p["writes"]]:
            if a in names and b in names:
                down.setdefault(a, set()).add(b)
                up.setdefault(b, set()).add(a)
    found = set()
    for graph in (up, down):
        frontier = {node}
        for _ in range(steps):
            frontier = {m for n in frontier for m in graph.get(n, ())} - found - {node}
            found |= frontier
    return found


def test_lineage_of_100_packages_is_navigable_in_chromium(big_report, tmp_path: Path) -> None:
    """Real headless Chromium runs the report's script: search filters and highlights, focus shows
    one node's neighbourhood, zoom changes the viewBox (the view's state is the URL fragment, which
    clicks and typing set too)."""
    doc, page = big_report
    assert len(doc["packages"]) == 100
    plain = lineage_dom(page, "", tmp_path)
    full = plain.viewbox
    assert len(plain.nodes) == len(doc["packages"]) + len(doc["datasets"]) > 200
    assert not any(c & {"dim", "faded", "match", "focus"} for c in plain.nodes.values())
    assert plain.view["data-zoom"] == "1.00" and f"{len(plain.nodes)} nodes" in plain.status

    zoomed = lineage_dom(page, "#zoom=2", tmp_path)
    assert zoomed.viewbox[2] == pytest.approx(full[2] / 2, abs=1) and zoomed.view["data-zoom"] == "2.00"

    word = "sessionize"
    hits = {n for n in plain.nodes if word in n[2:]}
    assert 0 < len(hits) < len(plain.nodes) / 2
    searched = lineage_dom(page, f"#search={word.upper()}", tmp_path)      # case-insensitive
    assert {n for n, c in searched.nodes.items() if "match" in c} == hits
    assert all("dim" in c for n, c in searched.nodes.items() if n not in hits)
    assert f"{len(hits)} of {len(plain.nodes)} nodes match" in searched.status
    nothing = lineage_dom(page, "#search=no-such-thing", tmp_path)
    assert "0 of" in nothing.status and all("dim" in c for c in nothing.nodes.values())

    target = sorted(p["name"] for p in doc["packages"] if p["reads"] and p["writes"])[len(doc["packages"]) // 3]
    focus = f"t:{target}"
    near = neighbourhood(doc, focus, 2)
    focused = lineage_dom(page, f"#focus={focus}", tmp_path)
    assert focused.view["data-focus"] == focus and "focus" in focused.nodes[focus]
    assert {n for n, c in focused.nodes.items() if "near" in c} == near and near
    assert all("faded" in c for n, c in focused.nodes.items() if n not in near | {focus})
    for a, b, classes in focused.edges:
        assert ("near" in classes) == (a in near | {focus} and b in near | {focus}), (a, b)
    assert focused.viewbox[2] < full[2] and target in focused.status
    shot = tmp_path / "focus.png"
    run = subprocess.run([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={tmp_path / 'shot'}", "--hide-scrollbars",
                          f"--screenshot={shot}", "--window-size=1400,1000", page.as_uri() + f"#focus={focus}"],
                         check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lineage_view_answers_clicks_typing_wheel_and_drag(big_report, tmp_path: Path) -> None:
    """The same page driven as a user would, over the DevTools protocol (tests/cdp.py)."""
    from tests.cdp import Browser

    doc, page = big_report
    assert CHROMIUM is not None, "chromium is installed by scripts/system-deps.sh"
    browser = Browser(CHROMIUM, CHROME_FLAGS, tmp_path / "profile", page.as_uri())
    try:
        def viewbox() -> list[float]:
            return [float(v) for v in browser.js("document.querySelector('#lineage svg').getAttribute('viewBox')")
                    .split()]

        def status() -> str:
            return browser.js("document.getElementById('lineage-status').textContent")

        def centre(selector: str) -> tuple[float, float]:
            box = browser.js(f"(function(){{var r = document.querySelector({json.dumps(selector)})"
                             ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]})()")
            return box[0], box[1]

        full = viewbox()
        target = sorted(p["name"] for p in doc["packages"] if p["reads"] and p["writes"])[7]
        browser.click(*centre(f'g[data-id="t:{target}"] rect'))
        browser.wait_for("document.getElementById('lineage').hasAttribute('data-focus')")
        assert browser.js("location.hash") == f"#focus=t%3A{target}" and target in status()
        assert browser.js(f"document.querySelector('g[data-id=\"t:{target}\"]').classList.contains('focus')")
        assert viewbox()[2] < full[2]
        browser.key("Escape")
        browser.wait_for("!document.getElementById('lineage').hasAttribute('data-focus')")
        assert browser.js("location.hash") == "" and viewbox() == full
        browser.js("document.getElementById('lineage-search').focus()")
        browser.type("ledger")
        browser.wait_for("document.querySelectorAll('g.node.match').length > 0")
        hits = sum("ledger" in n for n in [p["name"] for p in doc["packages"]] + [d["name"] for d in doc["datasets"]])
        assert hits and f"{hits} of" in status()
        assert browser.js("document.querySelectorAll('g.node.match').length") == hits
        browser.click(*centre("#lineage-all"))
        browser.wait_for("document.getElementById('lineage-search').value === ''")
        assert browser.js("document.querySelectorAll('g.node.match, g.node.dim').length") == 0
        x, y = centre("#lineage svg")
        browser.wheel(x, y, -300)
        zoomed = viewbox()
        assert zoomed[2] < full[2]
        browser.drag(x, y, 120, 40)
        panned = viewbox()
        assert panned[2:] == zoomed[2:] and panned[0] < zoomed[0] and panned[1] < zoomed[1]
        assert browser.js("location.hash") == ""                   # a drag is not a click on a node
        browser.click(*centre("#lineage-in"))
        assert viewbox()[2] < panned[2]
        browser.click(*centre("#lineage-fit"))
        assert viewbox() == full
    finally:
        browser.close()


def test_long_generated_names_are_cut_in_the_middle() -> None:
    from dkbuild.governance.report_render import _shorten

    a, b = (_shorten(f"customer-aggregate-accounts-0004{i}-out0", 28) for i in (1, 2))
    assert a != b and len(a) == 28 and a.startswith("customer-") and a.endswith("1-out0")
    assert _shorten("short", 28) == "short"


def test_schema_is_valid_and_shipped() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    assert json.loads((Path(__file__).parents[1] / "dkbuild/governance/report.schema.json").read_text()) == schema()


def test_external_datasets_are_reported_and_marked(workspace, dkb) -> None:
    # dk never resolves references: a dataset no manifest defines is listed as external, not dropped.
    root = workspace({"pipelines/ext/dk.yaml": transform("ext", ["partner-feed"], ["ext-out"]),
                      "datasets/ext-out/dk.yaml": dataset("ext-out")})
    doc = report_of(root)
    validate(doc)
    rows = {d["name"]: d for d in doc["datasets"]}
    assert rows["partner-feed"]["external"] is True and rows["partner-feed"]["consumers"] == ["ext"]
    assert rows["ext-out"]["external"] is False
    classified = next(p for p in doc["policies"] if p["id"] == "classification_present")
    assert not any("partner-feed" in v["message"] for v in classified["violations"])   # not ours to fix
    text = dkb("governance", "report", "--all", cwd=root)
    assert text.code == 0 and "partner-feed" in text.out and "EXTERNAL" in text.out
    assert dkb("governance", "report", "--all", "//pipelines/...", cwd=root).code == 2
