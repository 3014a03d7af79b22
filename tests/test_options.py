"""Cache URLs and options: parsing, coercion, and the errors that explain a bad one."""

from __future__ import annotations

import pytest

from blobcache import BlobCache, ConfigurationError, Options
from blobcache._url import parse_url


class TestUrls:
    def test_dynamodb_url(self) -> None:
        """Table, region and endpoint come from a dynamodb URL; other query keys are options."""
        location = parse_url(
            "dynamodb:///ZotBlobTable?region=eu-west-1&endpoint_url=http://127.0.0.1:8000"
            "&read_timeout=2.5&consistent_read=false&max_attempts=4",
            {},
        )
        assert (location.scheme, location.target) == ("dynamodb", "ZotBlobTable")
        assert (location.region, location.endpoint_url) == ("eu-west-1", "http://127.0.0.1:8000")
        assert location.options == Options(read_timeout=2.5, consistent_read=False, max_attempts=4)

    def test_keyword_options_win_over_the_query(self) -> None:
        """from_url keyword arguments override the URL's query."""
        location = parse_url("dynamodb:///t?region=r&read_timeout=2", {"read_timeout": 7})
        assert location.options.read_timeout == 7

    def test_sqlite_urls_follow_sqlalchemy(self) -> None:
        """sqlite:///x is relative, sqlite:////x absolute."""
        assert parse_url("sqlite:///data/cache.db", {}).target == "data/cache.db"
        assert parse_url("sqlite:////var/lib/cache.db", {}).target == "/var/lib/cache.db"

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("memcached://localhost/0", "unsupported cache URL"),
            ("dynamodb://", "cannot read a table name"),
            ("dynamodb://host/table", "cannot read a table name"),
            ("dynamodb:///a/b", "cannot read a table name"),
            ("dynamodb:///t?region=r&endpoint_url=ftp://x", "endpoint_url must be an http"),
            ("dynamodb:///t?region=r&endpoint_url=http://", "endpoint_url must be an http"),
            ("dynamodb:///t?region=r&endpoint_url=http://h:port", "endpoint_url must be an http"),
            ("dynamodb://[::1/t", "malformed cache URL"),
            ("sqlite:///a%00b", "NUL character"),
            ("dynamodb://key:secret@/t?region=r", "credentials do not belong"),
            ("sqlite://", "cannot read a database file"),
            ("sqlite:///:memory:", "in-memory and URI-style"),
            ("sqlite:///x.db?bogus=1", "unknown option(s) bogus"),
            ("sqlite:///x.db?read_timeout=soon", "must be a number"),
            ("sqlite:///x.db?consistent_read=maybe", "must be true or false"),
            ("sqlite:///x.db?synchronous=sometimes", "OFF, NORMAL, FULL or EXTRA"),
            ("dynamodb:///t?region=r&billing_mode=PROVISIONED", "read_capacity must be"),
            ("dynamodb:///t?region=r&read_capacity=5", "left unset unless"),
            ("sqlite:///x.db?max_attempts=0", "max_attempts must be a positive"),
        ],
    )
    def test_bad_urls_say_what_to_fix(self, url: str, message: str) -> None:
        """Every malformed URL or option raises ConfigurationError naming the problem."""
        with pytest.raises(ConfigurationError) as caught:
            BlobCache.from_url(url)
        assert message in str(caught.value)

    def test_credentials_never_echoed(self) -> None:
        """A URL carrying credentials is refused without repeating them."""
        with pytest.raises(ConfigurationError) as caught:
            BlobCache.from_url("dynamodb://AKIAEXAMPLE:s3cr3t@/t?region=r")
        assert "s3cr3t" not in str(caught.value)
        assert "AKIAEXAMPLE" not in str(caught.value)

    def test_url_must_be_text(self) -> None:
        """A non-string URL is a ConfigurationError, not a TypeError."""
        with pytest.raises(ConfigurationError, match="must be a string"):
            BlobCache.from_url(42)  # type: ignore[arg-type]


class TestOptions:
    def test_typed_values_are_checked(self) -> None:
        """Options refuses values of the wrong type, including bools posing as ints."""
        with pytest.raises(ConfigurationError, match="max_retries must be int"):
            Options.from_mapping({"max_retries": True})
        with pytest.raises(ConfigurationError, match="connect_timeout must be a positive"):
            Options(connect_timeout=0)

    def test_replace_validates(self) -> None:
        """replace returns a changed copy and validates it like the constructor."""
        options = Options()
        assert options.replace(page_size=10).page_size == 10
        assert options.page_size is None
        with pytest.raises(ConfigurationError):
            options.replace(page_size=0)

    def test_cache_exposes_its_options(self, tmp_path: object) -> None:
        """The cache keeps the options it was opened with."""
        cache = BlobCache.from_url(f"sqlite:///{tmp_path}/c.db?busy_timeout=3", page_size=5)
        assert (cache.options.busy_timeout, cache.options.page_size) == (3.0, 5)
