"""Sphinx configuration for blobcache's documentation."""

from __future__ import annotations

project = "blobcache"
author = "The blobcache developers"
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.doctest"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Every reference is checked: `name` in a docstring is a link to that object (structlog's
# set-up), and a name that resolves to nothing fails the build (-n -W in tox.ini).
default_role = "any"
nitpicky = True
# The build runs offline, so there is no intersphinx inventory for the standard library;
# its types in signatures stay plain text. Backend is the private protocol that
# BlobCache.from_url builds a cache around.
nitpick_ignore_regex = [
    ("py:class", r"(collections\.abc|os|typing|pathlib)\..*"),
    ("py:(class|exc)", r"(OSError|ValueError|LookupError)"),
    ("py:class", r"Backend"),
    # Literal aliases: each field's or report's description lists the values.
    ("py:class", r"(BillingMode|Synchronous|FindingKind|SkipReason)"),
]
html_theme = "alabaster"


def _resolve_private(app, env, node, contnode):
    """Point a reference to an object by its defining private module (as type hints name it:
    ``blobcache._options.Options``) at the public name it is documented under."""
    import blobcache
    import blobcache.maintenance

    if node.get("refdomain") != "py":
        return None
    module, _, name = node["reftarget"].rpartition(".")
    for package in (blobcache.maintenance, blobcache):
        private = module == "" or module.startswith(f"{package.__name__}._")
        if private and name in package.__all__:
            public = f"{package.__name__}.{name}"
            domain = env.get_domain("py")
            return domain.resolve_xref(
                env, node["refdoc"], app.builder, node["reftype"], public, node, contnode
            )
    return None


def setup(app):
    app.connect("missing-reference", _resolve_private)
