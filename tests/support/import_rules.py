"""Which way imports may run between the rooms of `infra/` (docs/architecture.md), read from
the source with `ast`: every `import` and `from ... import`, at module level or inside a
function or an `if TYPE_CHECKING:` block alike.

Rooms, lowest first; a room may import itself and the rooms it lists:
  capacity    catalog, prices, the capacity check: pure data and arithmetic
  config      the stack config (imports the catalog to check families, sizes and costs)
  shared      context, component, helm, iam, labels, versions: what every part uses
  foundation  AWS: network, cluster, Karpenter
  platform    on the cluster: GPU enablement, KubeRay, monitoring
  serving     the RayService and what its pods use, the ALB
`infra/` never imports tools/, tests/, policy/ or dashboards/ (__main__.py hands dashboards to
monitoring); serve_app/ (shipped to the Ray pods) never imports infra/, tools/, tests/, policy/
or dashboards/.
"""

from __future__ import annotations

import ast
from pathlib import Path

SHARED = frozenset({"context", "component", "helm", "iam", "labels", "versions"})
PACKAGES = frozenset({"capacity", "config", "foundation", "platform", "serving"})
# Modules at the top of infra/ that belong to a room but are not (yet) in its folder.
LEGACY: dict[str, str] = {}
ALLOWED: dict[str, frozenset[str]] = {
    "capacity": frozenset({"capacity"}),
    "config": frozenset({"config", "capacity"}),
    "shared": frozenset({"shared", "config", "capacity"}),
    "foundation": frozenset({"foundation", "shared", "config", "capacity"}),
    "platform": frozenset({"platform", "foundation", "shared", "config", "capacity"}),
    "serving": frozenset({"serving", "platform", "foundation", "shared", "config", "capacity"}),
}
NEVER_FROM_INFRA = ("tools", "tests", "policy", "dashboards")
NEVER_FROM_SERVE_APP = ("infra", "tools", "tests", "policy", "dashboards")


def room(module: str) -> str | None:
    """The room of an `infra.*` module name; None for a module in no room."""
    parts = module.split(".")
    if parts[0] != "infra" or len(parts) < 2:
        return None
    if parts[1] in PACKAGES:
        return parts[1]
    if parts[1] in SHARED:
        return "shared"
    return LEGACY.get(parts[1])


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, module) of every import in `tree`. `from a import b` counts as `a.b` (b may be a
    submodule: `from infra import labels`); relative imports are resolved against `module`."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                package = package if is_package else package[:-1]
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return out


def violations(root: Path) -> list[str]:
    """Every import under `root`/infra and `root`/serve_app that runs the wrong way, as
    `path:line: message`."""
    out: list[str] = []
    for top in ("infra", "serve_app"):
        for path in sorted((root / top).rglob("*.py")):
            name = module_name(path, root)
            tree = ast.parse(path.read_text(), filename=str(path))
            where = path.relative_to(root).as_posix()
            here = room(name) if top == "infra" and name != "infra" else None
            if top == "infra" and name != "infra" and here is None:
                out.append(f"{where}:1: in no room of infra/ (move it into "
                           f"{', '.join(sorted(PACKAGES))}, or name it shared)")
                continue
            for line, target in imported(tree, name, path.name == "__init__.py"):
                head = target.split(".")[0]
                if top == "serve_app" and head in NEVER_FROM_SERVE_APP:
                    out.append(f"{where}:{line}: serve_app imports {target} (the Ray pods "
                               f"get serve_app/ only)")
                elif top == "infra" and head in NEVER_FROM_INFRA:
                    out.append(f"{where}:{line}: infra imports {target}")
                elif top == "infra" and head == "infra" and target != "infra":
                    there = room(target)
                    if there is None:
                        out.append(f"{where}:{line}: imports {target}, in no room of infra/")
                    elif there not in ALLOWED[here or ""]:
                        out.append(
                            f"{where}:{line}: {here} imports {target} ({there}); {here} may "
                            f"import only {', '.join(sorted(ALLOWED[here or '']))}"
                        )
    return out
