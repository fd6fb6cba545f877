"""generic-go: `go build` the package's main (dk's layout rules), then run the binary.

Building first, instead of `go run`, keeps the program's own exit code (`go run` turns every
failure into 1) and lets a build failure be reported as such.
"""

from __future__ import annotations

from pathlib import Path

from dkbuild.lineage.runtimes.base import RunContext, Step, spec_command


class GoRuntime:
    name = "generic-go"
    tools = ("go",)
    install = "Go (https://go.dev/doc/install; on Debian/Ubuntu `apt-get install golang-go`)"

    def local_steps(self, ctx: RunContext, tools: dict[str, str]) -> list[Step]:
        module_dir, target = build_target(ctx.package_dir)
        binary = ctx.work_dir / "bin" / ctx.name
        build = Step([tools["go"], "build", "-o", str(binary), target], module_dir, what="go build")
        return [build, Step([str(binary), *ctx.extra_args], ctx.package_dir)]

    def container_command(self, ctx: RunContext) -> list[str]:
        return spec_command(ctx) + ctx.extra_args


def build_target(package_dir: Path) -> tuple[Path, str]:
    """(module directory, build target) as dk's image build picks them: src/ when the package has
    one, else main.go at the root ("."), else cmd/main.go ("./cmd")."""
    src = package_dir / "src"
    if src.is_dir() and ((src / "go.mod").is_file() or (src / "main.go").is_file()):
        return src, "."
    if not (package_dir / "main.go").is_file() and (package_dir / "cmd" / "main.go").is_file():
        return package_dir, "./cmd"
    return package_dir, "."
