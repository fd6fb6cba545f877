"""The workspace: its root (nearest workspace.toml walking up) and its configuration.

The configuration is validated by the pydantic models of `dkbuild.config_model`, but importing
pydantic and building those models takes longer than a warm command's whole work. So a validated
workspace.toml is also kept as plain data under `<cache dir>/cache/config/`, keyed by its exact
bytes and dkb's version; a command reads that, and builds the typed model (`Workspace.config`)
only when something asks for it. The hot paths read `Workspace.settings` instead.
"""

from __future__ import annotations

import hashlib
import pickle
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dkbuild import __version__
from dkbuild.diagnostics import DkbError, error
from dkbuild.redaction import redact_text

if TYPE_CHECKING:
    from dkbuild.config_model import WorkspaceConfig

WORKSPACE_FILE = "workspace.toml"
DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_MEMO_SCHEMA = "dkb-config-v3"     # bump when config_model changes shape

@dataclass(frozen=True)
class Settings:
    """A validated configuration as plain data (no pydantic needed to read it)."""
    given: dict[str, Any]     # what the file set: validates back to the very same model
    full: dict[str, Any]      # every value, defaults included
    json: str                 # the model's canonical JSON, which fingerprints hash

    @classmethod
    def of(cls, config: WorkspaceConfig) -> Settings:
        return cls(config.model_dump(exclude_unset=True), config.model_dump(), config.model_dump_json())

    def get(self, section: str, key: str) -> Any:
        return self.full[section][key]


class Workspace:
    """A workspace root and its configuration: the typed model, or validated plain data from which
    the model is built on first use."""

    def __init__(self, root: Path, config: WorkspaceConfig | None = None, *, settings: Settings | None = None):
        if config is None and settings is None:
            raise TypeError("Workspace needs a config or its settings")
        self.root = root
        self._config = config
        self._settings = settings

    @property
    def config(self) -> WorkspaceConfig:
        if self._config is None:
            from dkbuild.config_model import WorkspaceConfig

            assert self._settings is not None
            self._config = WorkspaceConfig.model_validate(self._settings.given)
        return self._config

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.of(self.config)
        return self._settings

    @property
    def cache_dir(self) -> Path:
        """The store: `.dkb` at the root unless [cache] dir says otherwise."""
        return self.root / self.settings.get("cache", "dir")

    def section(self, name: str) -> dict[str, Any]:
        """One section as content keys hash it (see WorkspaceConfig.section)."""
        return self.config.section(name)

    @property
    def name(self) -> str:
        return self.settings.get("workspace", "name") or self.root.name

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Workspace):
            return NotImplemented
        return self.root == other.root and self.settings.json == other.settings.json

    def __hash__(self) -> int:
        return hash((self.root, self.settings.json))

    def __repr__(self) -> str:
        return f"Workspace(root={self.root!r})"


def find_root(start: Path) -> Path | None:
    """Nearest directory at or above `start` holding a workspace.toml (nested workspaces: nearest wins)."""
    start = start.resolve()
    for directory in (start, *start.parents):
        path = directory / WORKSPACE_FILE
        if path.is_file():
            return directory
        if path.exists():       # a FIFO or a directory: never opened, never skipped for a parent's
            from dkbuild.fsutil import kind_of

            raise DkbError(error("E530", str(path), f"{WORKSPACE_FILE} is {kind_of(path.stat().st_mode)}, "
                                 "not a regular file", hint=f"replace it with a regular {WORKSPACE_FILE}"))
    return None


def load_workspace(start: Path) -> Workspace:
    root = find_root(start)
    if root is None:
        raise DkbError(error(
            "E120", str(start), f"no {WORKSPACE_FILE} found in {start} or any parent directory",
            hint="run dkb from inside a workspace, pass -C DIR, or create a workspace.toml "
                 "(an empty file is enough)"))
    return workspace_of(root, read_config_bytes(root / WORKSPACE_FILE))


def read_config_bytes(path: Path, file: str = WORKSPACE_FILE) -> bytes:
    """A TOML settings file's bytes, or a located error (E530) when it cannot be read."""
    from dkbuild.fsutil import read_regular

    try:
        return read_regular(path)
    except OSError as exc:
        raise DkbError(error("E530", file, f"cannot read {path.name}: {exc.strerror or exc}",
                             hint="make it a regular file readable by the user running dkb")) from None


def decode_config(raw: bytes, file: str = WORKSPACE_FILE) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DkbError(error("E121", file, f"{Path(file).name} is not UTF-8 text (byte {exc.start})",
                             hint=f"save {Path(file).name} as UTF-8")) from None


def read_config_text(path: Path, file: str | None = None) -> str:
    """A TOML settings file's text; "" when there is none; a located error when it is unusable."""
    if not path.exists() and not path.is_symlink():
        return ""
    return decode_config(read_config_bytes(path, file or str(path)), file or str(path))


def workspace_of(root: Path, raw: bytes, file: str = WORKSPACE_FILE) -> Workspace:
    """The workspace at `root` whose workspace.toml holds `raw` (from disk, or from a git revision:
    `file` names it in diagnostics), validated once per distinct content."""
    memo = _memo_path(root, raw)
    settings = _read_memo(memo) if memo is not None else None
    if settings is not None:
        return Workspace(root, settings=settings)
    from dkbuild.config_model import parse_config

    text = decode_config(raw, file)
    workspace = Workspace(root, parse_config(text, file))
    # Not kept when the file holds credentials (a URL's userinfo, say): the cache holds no secrets.
    if memo is not None and memo.parent.parent.parent == workspace.cache_dir and redact_text(text) == text:
        _write_memo(memo, workspace.settings)
    return workspace


def load_config(path: Path) -> WorkspaceConfig:
    from dkbuild.config_model import parse_config

    return parse_config(read_config_text(path, WORKSPACE_FILE))


def _memo_path(root: Path, raw: bytes) -> Path | None:
    """Where the validated form of these exact workspace.toml bytes is kept, in the cache directory
    the file names (read without validation; a write checks it against the validated one)."""
    try:
        cache = tomllib.loads(raw.decode("utf-8")).get("cache", {})
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None            # the full parse reports it
    directory = cache.get("dir", ".dkb") if isinstance(cache, dict) else None
    if not isinstance(directory, str):
        return None
    digest = hashlib.sha256(f"{_MEMO_SCHEMA}\0{__version__}\0".encode() + raw).hexdigest()[:32]
    return root / directory / "cache" / "config" / (digest + ".pickle")


def _read_memo(path: Path) -> Settings | None:
    try:
        state = pickle.loads(path.read_bytes())
    except Exception:  # noqa: BLE001 - missing, torn or foreign: validate the file instead
        return None
    if not isinstance(state, dict) or state.get("schema") != _MEMO_SCHEMA:
        return None
    settings = state.get("settings")
    return settings if isinstance(settings, Settings) else None


def _write_memo(path: Path, settings: Settings) -> None:
    from dkbuild.fsutil import atomic_write

    try:
        atomic_write(path, pickle.dumps({"schema": _MEMO_SCHEMA, "settings": settings}))
    except OSError:
        pass                   # a cache that cannot be written only costs time
