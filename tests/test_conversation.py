import threading
from pathlib import Path

from supportbot.conversation import (
    MemoryConversationStore,
    SqliteConversationStore,
    Turn,
    is_followup,
    retrieval_query,
)


def test_sqlite_store_survives_reopening_and_keeps_order(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    store = SqliteConversationStore(db)
    store.append("a", Turn("user", "hello"))
    store.append("b", Turn("user", "other"))
    store.append("a", Turn("assistant", "hi", meta={"mode": "faq"}))
    again = SqliteConversationStore(db)
    assert [(t.role, t.text) for t in again.history("a")] == [
        ("user", "hello"),
        ("assistant", "hi"),
    ]
    assert again.history("a")[1].meta == {"mode": "faq"}
    assert again.history("missing") == []


def test_stores_are_thread_safe(tmp_path: Path) -> None:
    for store in (MemoryConversationStore(), SqliteConversationStore(tmp_path / "t.db")):

        def talk(cid: str, store=store) -> None:  # type: ignore[no-untyped-def]
            for i in range(20):
                store.append(cid, Turn("user", f"{cid}-{i}"))

        threads = [threading.Thread(target=talk, args=(f"c{n}",)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for n in range(4):
            assert [t.text for t in store.history(f"c{n}")] == [f"c{n}-{i}" for i in range(20)]


def test_followups_are_joined_to_the_previous_question() -> None:
    history = [Turn("user", "how long is the warranty on the R1 Pro"), Turn("assistant", "3y")]
    assert is_followup("and the satellites?")
    assert is_followup("what about the blue one?")
    assert is_followup("how long does that take?")
    assert not is_followup("how do I set up port forwarding for my xbox")
    # complete questions stand on their own, however they open
    assert not is_followup("and how long does a factory reset take?")
    assert not is_followup("also, how do I change the admin password on the app?")
    assert is_followup("and what colour does it blink?")
    assert is_followup("can I use it with my modem?")
    assert retrieval_query("and the satellites?", history) == (
        "how long is the warranty on the R1 Pro and the satellites?"
    )
    assert retrieval_query("how do I change my wifi password", history) == (
        "how do I change my wifi password"
    )
    assert retrieval_query("and the satellites?", []) == "and the satellites?"
