"""Governance policies: PII classification, PII propagation with masking, classification downgrades."""

from __future__ import annotations

from dkbuild.api import load
from dkbuild.config_model import PolicySection
from dkbuild.governance.policy import check_policies
from tests.conftest import dataset, transform

PII = {"name": "email", "type": "string", "pii": True}


def findings(root, **policy):  # type: ignore[no-untyped-def]
    return check_policies(load(root).graph, PolicySection(**policy))


def test_pii_dataset_must_be_confidential(workspace) -> None:
    root = workspace({"datasets/people/dk.yaml": dataset("people", columns=[PII], classification="internal")})
    (d,) = findings(root)
    assert d.code == "E600" and d.field == "spec.classification" and "email" in d.message


def test_unclassified_pii_dataset(workspace) -> None:
    ds = dataset("people", columns=[PII])
    del ds["spec"]["classification"]
    (d,) = findings(workspace({"datasets/people/dk.yaml": ds}))
    assert d.code == "E600" and "not at all" in d.message


def _chain(masking: str | None = None, pii: bool = False, level: str = "confidential", declassify=None):  # type: ignore[no-untyped-def]
    column = {"name": "contact", "type": "string", "from": "people.email"}
    if masking:
        column["masking"] = masking
    if pii:
        column["pii"] = True
    extra = {"declassify": declassify} if declassify else {}
    return {
        "datasets/people/dk.yaml": dataset("people", columns=[PII], classification="confidential"),
        "datasets/contacts/dk.yaml": dataset("contacts", columns=[column], classification=level, **extra),
        "pipelines/copy/dk.yaml": transform("copy", ["people"], ["contacts"]),
    }


def test_derived_pii_column_must_be_pii_or_masked(workspace) -> None:
    (d,) = findings(workspace(_chain()))
    assert d.code == "E601" and d.field == "spec.schema[0].from" and "people.email" in d.message
    assert findings(workspace(_chain(pii=True))) == []
    assert findings(workspace(_chain(masking="hash"))) == []


def test_downgrade_needs_a_justified_declassify(workspace) -> None:
    (d,) = findings(workspace(_chain(masking="hash", level="internal")))
    assert d.code == "E602" and "people" in d.message and "confidential" in d.message
    ok = _chain(masking="hash", level="internal", declassify={"reason": "emails are hashed", "approvedBy": "privacy"})
    assert findings(workspace(ok)) == []


def test_downgrade_through_transform_inputs(workspace) -> None:
    files = {"datasets/secret/dk.yaml": dataset("secret", classification="restricted"),
             "datasets/summary/dk.yaml": dataset("summary", classification="internal"),
             "pipelines/sum/dk.yaml": transform("sum", ["secret"], ["summary"])}
    (d,) = findings(workspace(files))
    assert d.code == "E602" and d.file == "datasets/summary/dk.yaml" and "restricted" in d.message


def test_policies_are_configurable(workspace, tmp_path) -> None:
    root = workspace(_chain(level="internal"))
    assert {d.code for d in findings(root)} == {"E601", "E602"}
    assert findings(root, pii_propagation="off", classification_downgrade="off") == []
    (w,) = findings(root, classification_downgrade="off", pii_propagation="warning")
    assert w.code == "E601"
    people = dataset("people", columns=[PII], classification="internal")
    assert findings(workspace({"datasets/people/dk.yaml": people}, root=tmp_path / "other"), pii_allowed_classifications=["internal"]) == []
