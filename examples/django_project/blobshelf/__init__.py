"""The blobshelf app: uploads stored once, copies recorded as paths in blobcache."""
