"""``python -m blobcache``: the ``blobcache`` command line."""

from __future__ import annotations

from blobcache.cli import main

if __name__ == "__main__":
    main()
