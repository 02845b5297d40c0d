"""The user's pip configuration (index, extra indexes, find-links, constraints), for installers that do not
read pip's files themselves (uv).

Sources, in pip's order of precedence (later wins): global files (``/etc/xdg/pip/pip.conf``,
``/etc/pip.conf``), user files (``~/.pip/pip.conf``, ``$XDG_CONFIG_HOME/pip/pip.conf``), the active
virtualenv's ``pip.conf``, ``PIP_CONFIG_FILE``, then ``PIP_*`` environment variables. Sections
``[global]`` then ``[install]``.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PipSettings:
    """The settings that decide what gets installed."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    no_index: bool = False
    cert: str | None = None
    sources: tuple[str, ...] = field(default=(), compare=False)

    def with_job_indexes(self, urls: Sequence[str] | None) -> PipSettings:
        """The job's ``pip_index_urls`` replace the configured indexes (first = index, rest = extra)."""
        if not urls:
            return self
        return PipSettings(
            index_url=urls[0],
            extra_index_urls=tuple(urls[1:]),
            find_links=self.find_links,
            constraints=self.constraints,
            no_index=False,
            cert=self.cert,
            sources=(*self.sources, "job pip_index_urls"),
        )

    def installer_args(self) -> list[str]:
        """pip/uv command-line flags for these settings."""
        args: list[str] = []
        if self.no_index:
            args.append("--no-index")
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        for path in self.constraints:
            args += ["--constraint", path]
        return args

    def fingerprint(self) -> dict[str, object]:
        """What goes into an environment's cache key (constraint files by content)."""
        constraint_contents = []
        for path in self.constraints:
            try:
                with open(path, encoding="utf-8") as fh:
                    constraint_contents.append(fh.read())
            except OSError:
                constraint_contents.append(f"<unreadable {path}>")
        return {
            "index_url": self.index_url,
            "extra_index_urls": list(self.extra_index_urls),
            "find_links": list(self.find_links),
            "constraints": constraint_contents,
            "no_index": self.no_index,
        }


def _files() -> list[str]:
    config_file = os.environ.get("PIP_CONFIG_FILE")
    if config_file == os.devnull:
        return []
    xdg_dirs = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(os.pathsep)
    files = [os.path.join(d, "pip", "pip.conf") for d in xdg_dirs if d] + ["/etc/pip.conf"]
    home = os.path.expanduser("~")
    files.append(os.path.join(home, ".pip", "pip.conf"))
    files.append(os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"), "pip", "pip.conf"))
    if os.environ.get("VIRTUAL_ENV"):
        files.append(os.path.join(os.environ["VIRTUAL_ENV"], "pip.conf"))
    if config_file:
        files.append(config_file)
    return files


def _split(value: str) -> tuple[str, ...]:
    return tuple(v for v in value.split() if v)


def read_pip_settings(environ: dict[str, str] | None = None) -> PipSettings:
    """Read pip's configuration files and environment variables."""
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    sources: list[str] = []
    for path in _files():
        if not os.path.isfile(path):
            continue
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError):
            continue
        sources.append(path)
        for section in ("global", "install"):
            if parser.has_section(section):
                for key, value in parser.items(section):
                    values[key.replace("_", "-")] = value
    for key in ("index-url", "extra-index-url", "find-links", "constraint", "no-index", "cert"):
        env_key = "PIP_" + key.upper().replace("-", "_")
        if env.get(env_key):
            values[key] = env[env_key]
            sources.append(env_key)
    no_index = values.get("no-index", "").strip().lower() in ("1", "true", "yes", "on")
    return PipSettings(
        index_url=values.get("index-url") or None,
        extra_index_urls=_split(values.get("extra-index-url", "")),
        find_links=_split(values.get("find-links", "")),
        constraints=_split(values.get("constraint", "")),
        no_index=no_index,
        cert=values.get("cert") or None,
        sources=tuple(sources),
    )
