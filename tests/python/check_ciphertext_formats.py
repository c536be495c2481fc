"""Opens docs/ciphertext-vector-v{1,2,3,4}.hex with pyca/cryptography, an
implementation independent of opendew's, following docs/ciphertext-format.md
alone. Run by crates/opendew/tests/sdk.rs; argv[1] is the docs folder."""

import pathlib
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

DOCS = pathlib.Path(sys.argv[1])
MATERIAL = b"\x42" * 32
PROJECT = b"0123456789abcdef0123456789abcdef"
AAD = b"example-aad"

# version byte: (AAD label, header length, padded, per-message key)
FORMATS = {
    1: (b"opendew/kms/ciphertext/v1", 21, False, False),
    2: (b"opendew/kms/data/v2", 23, True, False),
    3: (b"opendew/kms/ciphertext/v3", 37, False, True),
    4: (b"opendew/kms/data/v4", 39, True, True),
}


def open_blob(blob: bytes) -> bytes:
    label, header_len, padded, derived = FORMATS[blob[0]]
    header = blob[:header_len]
    key = MATERIAL
    if derived:
        key = HKDFExpand(hashes.SHA256(), 32, label + header[-16:]).derive(MATERIAL)
    nonce, body = blob[header_len : header_len + 12], blob[header_len + 12 :]
    plain = AESGCM(key).decrypt(nonce, body, label + header + PROJECT + AAD)
    if padded:
        plain = plain[: len(plain) - int.from_bytes(blob[21:23], "big")]
    return plain


expected = {1: b"\x5a" * 32, 2: b"card=4111-xx", 3: b"\x5a" * 32, 4: b"card=4111-xx"}
for version, plain in expected.items():
    blob = bytes.fromhex((DOCS / f"ciphertext-vector-v{version}.hex").read_text().strip())
    assert blob[0] == version, version
    assert open_blob(blob) == plain, version
    if version in (2, 4):
        assert len(blob) >= 141, version
print("ciphertext formats 1-4 open in pyca/cryptography")
