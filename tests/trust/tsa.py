"""A time-stamping authority made here, for what no fixture shows: RFC 3161 tokens at a
chosen time, over chosen bytes, from a TSA whose keys the tests hold."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class Authority:
    """A root and a TSA certificate under it, both valid a year either side of `around`."""

    def __init__(self, around: datetime, *, eku: bool = True) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = (
            x509.CertificateBuilder()
            .subject_name(_name("test tsa root"))
            .issuer_name(_name("test tsa root"))
            .public_key(self.root_key.public_key())
            .serial_number(1)
            .not_valid_before(around - timedelta(days=365))
            .not_valid_after(around + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.root_key, hashes.SHA256())
        )
        self.key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name("test tsa"))
            .issuer_name(_name("test tsa root"))
            .public_key(self.key.public_key())
            .serial_number(2)
            .not_valid_before(around - timedelta(days=365))
            .not_valid_after(around + timedelta(days=365))
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        )
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        self.certificate = builder.sign(self.root_key, hashes.SHA256())

    @property
    def chain(self) -> tuple[x509.Certificate, x509.Certificate]:
        return self.certificate, self.root

    def token(self, message: bytes, at: datetime, *, embed: bool = True, ess_v1: bool = False) -> cms.ContentInfo:
        tst = tsp.TSTInfo(
            {
                "version": "v1",
                "policy": "1.3.6.1.4.1.57264.2",
                "message_imprint": {
                    "hash_algorithm": {"algorithm": "sha256"},
                    "hashed_message": hashlib.sha256(message).digest(),
                },
                "serial_number": 7,
                "gen_time": at,
                "accuracy": {"seconds": 1},
            }
        )
        content = tst.dump()
        der = self.certificate.public_bytes(Encoding.DER)
        certificate = asn1_x509.Certificate.load(der)
        attributes = cms.CMSAttributes(
            [
                cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
                cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(content).digest()]}),
                cms.CMSAttribute(
                    {"type": "signing_certificate", "values": [{"certs": [{"cert_hash": hashlib.sha1(der).digest()}]}]}
                    if ess_v1
                    else {
                        "type": "signing_certificate_v2",
                        "values": [{"certs": [{"cert_hash": hashlib.sha256(der).digest()}]}],
                    }
                ),
            ]
        )
        signature = self.key.sign(attributes.dump(), ec.ECDSA(hashes.SHA256()))
        signer = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    {
                        "issuer_and_serial_number": {
                            "issuer": certificate.issuer,
                            "serial_number": certificate.serial_number,
                        }
                    }
                ),
                "digest_algorithm": {"algorithm": "sha256"},
                "signed_attrs": attributes,
                "signature_algorithm": {"algorithm": "sha256_ecdsa"},
                "signature": signature,
            }
        )
        signed = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [{"algorithm": "sha256"}],
                "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(content)},
                "certificates": [certificate] if embed else [],
                "signer_infos": [signer],
            }
        )
        return cms.ContentInfo({"content_type": "signed_data", "content": signed})

    def response(self, message: bytes, at: datetime, *, embed: bool = False) -> bytes:
        """A granted TimeStampResp, as sigstore bundles carry them."""
        token = self.token(message, at, embed=embed)
        return bytes(tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump())
