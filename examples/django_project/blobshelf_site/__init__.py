"""The blobshelf example project's configuration."""
