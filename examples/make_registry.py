"""Generate examples/registry: a tiny storage tree in zot's layout, for `make demo`.

Four repositories share a base layer; two copies of it are full files, one is
a zero-byte placeholder (as zot leaves on S3 with dedupe on). Every blob is
named by the sha256 of its bytes. Re-running rewrites the same tree.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "registry"
LAYOUT = {"imageLayoutVersion": "1.0.0"}
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"

BASE = b"base layer: a shared root filesystem\n" * 4
TOOLS = b"tools layer: busybox applets\n" * 3
APP = b"app layer: the team's service\n" * 2
WEB = b"web layer: static assets\n" * 2

#: repository -> (layers, which of them are zero-byte placeholders)
REPOSITORIES: dict[str, tuple[list[bytes], set[bytes]]] = {
    "library/alpine": ([BASE], set()),
    "library/busybox": ([BASE, TOOLS], set()),
    "team/app": ([BASE, TOOLS, APP], {BASE, TOOLS}),
    "team/web": ([BASE, WEB], {BASE}),
}


def digest(content: bytes) -> str:
    """The OCI digest of ``content``."""
    return "sha256:" + hashlib.sha256(content).hexdigest()


def write_blob(repository: Path, content: bytes, placeholder: bool = False) -> str:
    """Store ``content`` (or a zero-byte placeholder for it) under its digest."""
    name = digest(content)
    path = repository / "blobs" / "sha256" / name.removeprefix("sha256:")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"" if placeholder else content)
    return name


def canonical(document: object) -> bytes:
    """JSON bytes, stable across runs."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def main() -> None:
    """Rewrite the whole tree."""
    shutil.rmtree(ROOT, ignore_errors=True)
    for name, (layers, placeholders) in REPOSITORIES.items():
        repository = ROOT / name
        descriptors = [
            {
                "mediaType": LAYER,
                "digest": write_blob(repository, layer, layer in placeholders),
                "size": len(layer),
            }
            for layer in layers
        ]
        config = canonical({"architecture": "amd64", "os": "linux", "repository": name})
        manifest = canonical(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {
                    "mediaType": CONFIG,
                    "digest": write_blob(repository, config),
                    "size": len(config),
                },
                "layers": descriptors,
            }
        )
        index = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": MANIFEST,
                    "digest": write_blob(repository, manifest),
                    "size": len(manifest),
                    "annotations": {"org.opencontainers.image.ref.name": "latest"},
                }
            ],
        }
        (repository / "oci-layout").write_bytes(canonical(LAYOUT))
        (repository / "index.json").write_bytes(canonical(index))
    print(f"wrote {ROOT}")


if __name__ == "__main__":
    main()
