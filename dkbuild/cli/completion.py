"""`dkb completion bash|zsh|fish`: print the shell's completion script (click's machinery)."""

from __future__ import annotations

import click

COMPLETE_VAR = "_DKB_COMPLETE"

# Labels contain ':', which bash splits words on; without this `//pkg:<TAB>` cannot complete.
_BASH_COLON_FIX = """
# dkb labels contain ':'; stop bash from splitting words there (as Bazel's completion does).
COMP_WORDBREAKS=${COMP_WORDBREAKS//:}
"""


def completion_script(cli: click.Command, shell: str, prog_name: str = "dkb") -> str:
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - the Choice below prevents it
        raise click.UsageError(f"unsupported shell {shell!r}")
    script = cls(cli, {}, prog_name, COMPLETE_VAR).source()
    return script + (_BASH_COLON_FIX if shell == "bash" else "")


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion_command(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL. Commands, options and labels (//pkg, //dir/...,
    //pkg:name, :name) complete.

    \b
      bash:  eval "$(dkb completion bash)"            # in ~/.bashrc
      zsh:   eval "$(dkb completion zsh)"             # in ~/.zshrc, after compinit
      fish:  dkb completion fish > ~/.config/fish/completions/dkb.fish
    """
    root = ctx.find_root()
    click.echo(completion_script(root.command, shell, root.info_name or "dkb"), nl=False)
