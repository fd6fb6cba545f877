"""The harness's Go text/template renderer: dk's own expectations (renderer_test.go) and the parts of
text/template semantics the `dk init` templates rely on. A wrong renderer would test the wrong tree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.compat.corpus import TEMPLATES, init_config, render_init
from tests.compat.gotemplate import TemplateError, pascal_case, render, snake_case


@pytest.mark.parametrize(("given", "snake", "pascal"), [
    ("my-app", "my_app", "MyApp"), ("simple", "simple", "Simple"), ("a-b-c", "a_b_c", "ABC"),
    ("already_snake", "already_snake", "AlreadySnake"), ("camelCase", "camel_case", "CamelCase"),
    ("PascalCase", "pascal_case", "PascalCase"), ("my-cool-plugin", "my_cool_plugin", "MyCoolPlugin"),
    ("x", "x", "X"), ("", "", ""),
])
def test_case_helpers_match_renderer_test_go(given: str, snake: str, pascal: str) -> None:
    assert snake_case(given) == snake
    assert pascal_case(given) == pascal


def test_actions_pipelines_literals_and_trimming() -> None:
    data = {"Name": "user-agg", "Mode": "batch", "Team": ""}
    assert render("name: {{ .Name }}\n", data) == "name: user-agg\n"
    assert render("{{ .Name | snakeCase }}", data) == "user_agg"
    assert render('{{ "{{ source(\'raw\', \'t\') }}" }}', data) == "{{ source('raw', 't') }}"
    assert render('{{ "{{" }} config() {{ "}}" }}', data) == "{{ config() }}"
    assert render("a  {{- .Mode -}}  b", data) == "abatchb"
    assert render('{{ replace .Name "-" "_" | upper }}', data) == "USER_AGG"
    assert render("{{/* a comment */}}x", data) == "x"


def test_conditionals_follow_go_truthiness() -> None:
    source = "{{ if .Team }}team={{ .Team }}{{ else if eqless }}x{{ else }}no team{{ end }}"
    with pytest.raises(TemplateError):
        render(source, {"Team": ""})                           # `eqless` is no function: loud
    source = "{{ if .Team }}team={{ .Team }}{{ else }}no team{{ end }}"
    assert render(source, {"Team": ""}) == "no team"
    assert render(source, {"Team": "web"}) == "team=web"


@pytest.mark.parametrize("action", ["{{ range .X }}{{ end }}", "{{ $x := .Name }}", '{{ template "t" }}',
                                    "{{ .Missing }}", "{{ .Name"])
def test_unsupported_or_wrong_templates_fail_loudly(action: str) -> None:
    with pytest.raises(TemplateError):
        render(action, {"Name": "n"})


@pytest.mark.parametrize(("runtime", "files"), [
    ("generic-go", ["dk.yaml", "go.mod", "main.go", "cmd/root.go", ".gitignore", ".dockerignore"]),
    ("dbt", ["dk.yaml", "dbt_project.yml", "profiles.yml", "models/example.sql"]),
    ("generic-python", ["dk.yaml", "main.py", "requirements.txt"]),
])
def test_rendered_tree_has_the_files_renderer_test_go_expects(tmp_path: Path, runtime: str, files: list[str]) -> None:
    if not (TEMPLATES / "transform" / runtime).is_dir():
        pytest.fail(f"{TEMPLATES}/transform/{runtime} is missing from the dk corpus", pytrace=False)
    render_init(TEMPLATES / "transform" / runtime, tmp_path, init_config("Transform", runtime, "user-agg"))
    for rel in files:
        assert (tmp_path / rel).is_file(), rel
    assert not list(tmp_path.rglob("*.tmpl"))
    manifest = yaml.safe_load((tmp_path / "dk.yaml").read_text())
    assert manifest["metadata"] == {"name": "user-agg", "namespace": "default", "version": "0.1.0",
                                    "labels": {"team": "my-team"}}
