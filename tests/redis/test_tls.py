"""rediss:// against a redis-server serving TLS with a certificate from a throwaway CA."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from blobcache import BlobCache, ConfigurationError
from blobcache.testing import RedisServer
from tests.helpers import digest_of


def _write_pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "blobcache test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        # Python 3.13 verifies strictly (VERIFY_X509_STRICT): it wants the issuer's key id.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return (
        _write_pem(directory / "ca.pem", ca.public_bytes(pem)),
        _write_pem(directory / "server.pem", cert.public_bytes(pem)),
        _write_pem(
            directory / "server.key",
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        ),
    )


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, Path]]:
    """A redis-server that speaks only TLS on its port; yields it and the CA file."""
    directory = tmp_path_factory.mktemp("redis-tls")
    ca, cert, key = make_certificates(directory)
    server = RedisServer(directory)
    server.config = (
        "--port", "0",
        "--tls-port", str(server.port),
        "--tls-cert-file", str(cert),
        "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(ca),
        "--tls-auth-clients", "no",
    )  # fmt: skip
    server.start()
    try:
        yield server, ca
    finally:
        server.stop()


class TestTLS:
    def test_rediss_with_the_servers_ca(self, tls_server: tuple[RedisServer, Path]) -> None:
        """rediss:// with ssl_ca_certs verifies the server and works like redis://."""
        server, ca = tls_server
        url = f"rediss://127.0.0.1:{server.port}/0?prefix=tls&ssl_ca_certs={ca}"
        with BlobCache.from_url(url) as cache:
            cache.create_table()
            cache.put(digest_of(1), "/over/tls")
            assert cache.get_all(digest_of(1)) == ["/over/tls"]

    def test_an_untrusted_certificate_is_a_configuration_error(
        self, tls_server: tuple[RedisServer, Path]
    ) -> None:
        """Without the CA the certificate fails verification: the error says what to set."""
        server, _ = tls_server
        cache = BlobCache.from_url(f"rediss://127.0.0.1:{server.port}/0", max_retries=0)
        with pytest.raises(ConfigurationError, match="ssl_ca_certs"):
            cache.get(digest_of(1))
