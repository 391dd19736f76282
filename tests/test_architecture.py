"""The package boundaries the design depends on."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_supportbot_never_imports_ingest() -> None:
    for path in (ROOT / "supportbot").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "ingest" or n.startswith("ingest.") for n in names), path


def test_importing_supportbot_loads_no_heavy_library() -> None:
    code = ("import sys, supportbot, supportbot.factory, supportbot.retrieve;"
            "print([m for m in ('torch', 'chromadb', 'sentence_transformers', 'llama_cpp')"
            " if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_public_api_is_pinned() -> None:
    import supportbot

    assert supportbot.__all__ == sorted(supportbot.__all__)
    assert {"Settings", "SupportBot", "Reply", "Reason", "HandoffPacket"} <= set(supportbot.__all__)
