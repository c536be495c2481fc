"""The official Python SDK against the gateway's HTTPS endpoint.

Run by crates/opendew/tests/sdk.rs with the stack on `opendew dev --tls`:
OPENDEW_ENDPOINT is https://…, OPENDEW_CA_FILE the development CA. The SDK
must work when told to trust that CA (ssl_ca_cert) and when told to skip
verification (ignore_ssl_verification), and must refuse the connection
when told neither: the certificate is not publicly trusted.
"""

import os
import unittest
import uuid

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import SdkException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcsms.v1 import CreateSecretRequest, CreateSecretRequestBody, CsmsClient, ShowSecretVersionRequest
from huaweicloudsdkkms.v2 import CreateKeyRequest, CreateKeyRequestBody, KmsClient


def clients(config):
    credentials = BasicCredentials(os.environ["OPENDEW_AK"], os.environ["OPENDEW_SK"], os.environ["OPENDEW_PROJECT_ID"])
    endpoint = os.environ["OPENDEW_ENDPOINT"]
    build = lambda cls: cls.new_builder().with_credentials(credentials).with_endpoint(endpoint).with_http_config(config).build()
    return build(KmsClient), build(CsmsClient)


class HttpsTest(unittest.TestCase):
    def round_trip(self, config):
        kms, csms = clients(config)
        alias = "tls-%s" % uuid.uuid4().hex[:10]
        key = kms.create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias=alias))).key_info
        self.assertEqual(len(key.key_id), 36)
        name = "tls-%s" % uuid.uuid4().hex[:10]
        csms.create_secret(CreateSecretRequest(body=CreateSecretRequestBody(name=name, secret_string="over https")))
        version = csms.show_secret_version(ShowSecretVersionRequest(secret_name=name, version_id="latest")).version
        self.assertEqual(version.secret_string, "over https")

    def test_with_the_ca_bundle(self):
        self.assertTrue(os.environ["OPENDEW_ENDPOINT"].startswith("https://"))
        config = HttpConfig.get_default_config()
        config.ssl_ca_cert = os.environ["OPENDEW_CA_FILE"]
        self.round_trip(config)

    def test_with_verification_ignored(self):
        config = HttpConfig.get_default_config()
        config.ignore_ssl_verification = True
        self.round_trip(config)

    def test_untrusted_certificate_is_refused(self):
        config = HttpConfig.get_default_config()
        config.retry_times = 0
        kms, _ = clients(config)
        with self.assertRaises(SdkException) as caught:
            kms.create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias="never-%s" % uuid.uuid4().hex[:8])))
        self.assertIn("SSL", str(caught.exception).upper())


if __name__ == "__main__":
    unittest.main(verbosity=2)
