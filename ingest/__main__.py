"""``python -m ingest PATH...``: the same as ``supportbot ingest PATH...``."""

from ingest.cli import main

if __name__ == "__main__":
    main()
