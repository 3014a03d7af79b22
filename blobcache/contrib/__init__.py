"""Framework integrations (Flask, Django) over blobcache's public API; core never imports them."""
