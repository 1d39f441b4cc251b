"""Content credentials (C2PA): read offline, shown in result.json and the report, honest about absence.

c2pa-python ships no test certificate, so each test signs the example photo with an ES256 chain it makes itself
(cryptography, a dependency of c2pa-python). Never any network: no timestamp authority, no remote manifest.
"""

from __future__ import annotations

import datetime
import io
import json
import socket

import pytest

from conftest import FACE_IMAGE, run_cli
from ddtool.media.credentials import ABSENT_PROVES_NOTHING, OFFLINE_SETTINGS, content_credentials
from ddtool.scan.outputs import output_dir_name
from test_explain import register_tiny

try:
    import c2pa
    from cryptography import x509
except ImportError:  # the C2PA tests skip cleanly; the scan without c2pa is still tested
    c2pa = None
needs_c2pa = pytest.mark.skipif(c2pa is None, reason="c2pa-python (and cryptography) not installed")

SIGNER = "ddtool unit-test signer"


def _certificate_chain():
    """A CA and a leaf certificate for signing (ES256, email-protection EKU as C2PA asks); PEM chain and key."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ddtool tests")])

    now = datetime.datetime.now(datetime.timezone.utc)
    usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
                 encipher_only=False, decipher_only=False)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("ddtool test CA")).issuer_name(name("ddtool test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True, **usage), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name(SIGNER)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **usage), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    return chain, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@pytest.fixture(scope="module")
def signed_photos(tmp_path_factory):
    """The example photo signed (a 'made by generative AI' claim), a copy changed after signing, and the plain photo."""
    folder = tmp_path_factory.mktemp("c2pa")
    chain, key = _certificate_chain()
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", chain, key, None))  # no timestamp authority: offline
    manifest = {
        "claim_generator_info": [{"name": "ddtool-tests", "version": "1"}],
        "title": "astronaut.jpg",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [
            {"action": "c2pa.created", "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"}]}}],
    }
    context = c2pa.Context.from_dict({**OFFLINE_SETTINGS, "builder": {"auto_timestamp_assertion": {"enabled": False}}})
    signed = io.BytesIO()
    c2pa.Builder(manifest, context=context).sign(signer, "image/jpeg", io.BytesIO(FACE_IMAGE.read_bytes()), signed)
    paths = {"signed": folder / "signed.jpg", "changed": folder / "changed.jpg", "plain": folder / "plain.jpg"}
    paths["signed"].write_bytes(signed.getvalue())
    changed = bytearray(signed.getvalue())
    changed[-200] ^= 0xFF  # one byte of the picture, after signing
    paths["changed"].write_bytes(bytes(changed))
    paths["plain"].write_bytes(FACE_IMAGE.read_bytes())
    return paths


@pytest.fixture()
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("content credentials must be read offline")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@needs_c2pa
def test_valid_absent_and_changed_manifests(signed_photos, no_network):
    assert OFFLINE_SETTINGS["verify"] == {"remote_manifest_fetch": False, "ocsp_fetch": False}
    valid = content_credentials(signed_photos["signed"])
    assert valid["status"] == "valid" and valid["signer"]["common_name"] == SIGNER and valid["signer"]["issuer"] == "ddtool tests"
    assert valid["claims"] == ["c2pa.created (source: made by generative AI)"] and valid["failures"] == []
    assert "not checked against any trust list" in valid["meaning"] and valid["claim_generator"].startswith("ddtool-tests 1")
    changed = content_credentials(signed_photos["changed"])
    assert changed["status"] == "invalid" and "INVALID" in changed["summary"]
    assert any("mismatch" in f["code"] for f in changed["failures"])
    absent = content_credentials(signed_photos["plain"])
    assert absent["status"] == "absent" and absent["note"] == ABSENT_PROVES_NOTHING and "proves nothing" in absent["note"]


@needs_c2pa
def test_scan_shows_credentials_in_result_json_and_report(signed_photos, tmp_path, capsys, no_network):
    out = tmp_path / "ev"
    code, _, err = run_cli(["scan", signed_photos["signed"], "--model", register_tiny(), "--untrained", "--out", out], capsys)
    assert code in (0, 8), err
    folder = out / output_dir_name(signed_photos["signed"])
    item = json.loads((folder / "result.json").read_text())
    facts = item["content_credentials"]
    assert facts["status"] == "valid" and facts["signer"]["common_name"] == SIGNER
    html = (folder / "report.html").read_text()
    assert "Content credentials (C2PA)" in html and SIGNER in html and "made by generative AI" in html and "proves nothing" in html


def test_without_c2pa_the_scan_says_not_checked(monkeypatch, tmp_path, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "c2pa", None)  # import c2pa now raises ImportError
    assert content_credentials(FACE_IMAGE)["summary"] == "content credentials: not checked (c2pa-python not installed)"
    code, stdout, err = run_cli(["scan", FACE_IMAGE, "--model", register_tiny(), "--untrained", "--json"], capsys)
    assert code in (0, 8), err
    assert json.loads(stdout)["inputs"][0]["content_credentials"]["status"] == "not_checked"
