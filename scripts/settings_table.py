"""Rewrite the settings table in docs/configuration.md from supportbot.config.

Run it after adding or changing a settings field.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from supportbot.config import Settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
HEADER = "| variable | default | meaning |\n|---|---|---|\n"


def rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    out: list[str] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += rows(ann, f"{prefix}{name.upper()}__")
            continue
        if field.default_factory is not None:
            value = field.default_factory()  # type: ignore[call-arg]
            default = f"`{value}`" if len(str(value)) < 40 else "see `supportbot/config.py`"
        else:
            default = "unset" if field.default is None else f"`{field.default}`"
        desc = (field.description or "").replace("<data_dir>", "&lt;data_dir&gt;")
        out.append(f"| `SUPPORTBOT_{prefix}{name.upper()}` | {default} | {desc} |")
    return out


def main() -> None:
    text = DOC.read_text()
    start = text.index(HEADER) + len(HEADER)
    end = text.index("\n\n", start)
    DOC.write_text(text[:start] + "\n".join(rows(Settings)) + text[end:])


if __name__ == "__main__":
    main()
