"""The official Huawei Cloud Python SDK against a running opendew gateway.

Run by crates/opendew/tests/sdk.rs, which starts the stack and passes its
endpoint and credentials in OPENDEW_ENDPOINT, OPENDEW_AK, OPENDEW_SK and
OPENDEW_PROJECT_ID. Only the endpoint differs from talking to Huawei Cloud.
"""

import os
import unittest
import uuid

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcsms.v1 import (
    CreateSecretRequest,
    CreateSecretRequestBody,
    CsmsClient,
    ShowSecretRequest,
    ShowSecretVersionRequest,
)
from huaweicloudsdkkms.v2 import (
    CreateKeyRequest,
    CreateKeyRequestBody,
    KmsClient,
    ListKeyDetailRequest,
    ListKeysRequest,
    ListKeysRequestBody,
    OperateKeyRequestBody,
)


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


class SdkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        endpoint = os.environ["OPENDEW_ENDPOINT"]
        credentials = BasicCredentials(os.environ["OPENDEW_AK"], os.environ["OPENDEW_SK"], os.environ["OPENDEW_PROJECT_ID"])
        cls.kms = KmsClient.new_builder().with_credentials(credentials).with_endpoint(endpoint).build()
        cls.csms = CsmsClient.new_builder().with_credentials(credentials).with_endpoint(endpoint).build()
        cls.project_id = os.environ["OPENDEW_PROJECT_ID"]

    def assertSdkError(self, call, status, code):
        with self.assertRaises(ClientRequestException) as caught:
            call()
        error = caught.exception
        self.assertEqual(error.status_code, status, str(error))
        self.assertEqual(error.error_code, code, str(error))
        self.assertTrue(error.error_msg)
        self.assertTrue(error.request_id)

    def create_key(self, **fields):
        return self.kms.create_key(CreateKeyRequest(body=CreateKeyRequestBody(**fields)))

    def create_secret(self, **fields):
        return self.csms.create_secret(CreateSecretRequest(body=CreateSecretRequestBody(**fields)))

    def read(self, name, version="latest"):
        return self.csms.show_secret_version(ShowSecretVersionRequest(secret_name=name, version_id=version)).version

    def test_create_describe_and_list_keys(self):
        alias = unique("sdk-key")
        created = self.create_key(key_alias=alias, key_description="from the SDK")
        key_id = created.key_info.key_id
        self.assertEqual(len(key_id), 36)
        details = self.kms.list_key_detail(ListKeyDetailRequest(body=OperateKeyRequestBody(key_id=key_id))).key_info
        self.assertEqual(details.key_alias, alias)
        self.assertEqual(details.key_state, "2")
        self.assertEqual(details.key_spec, "AES_256")
        self.assertEqual(details.key_description, "from the SDK")
        listed = self.kms.list_keys(ListKeysRequest(body=ListKeysRequestBody(limit="1000")))
        self.assertIn(key_id, listed.keys)
        self.assertIsInstance(listed.total, int)
        self.assertEqual(listed.truncated, "false")

    def test_key_errors(self):
        alias = unique("dup")
        self.create_key(key_alias=alias)
        self.assertSdkError(lambda: self.create_key(key_alias=alias), 400, "KMS.1104")
        self.assertSdkError(lambda: self.create_key(key_alias="bad alias"), 400, "KMS.1101")
        self.assertSdkError(lambda: self.create_key(key_alias="mine/default"), 400, "KMS.1101")
        missing = OperateKeyRequestBody(key_id=str(uuid.uuid4()))
        self.assertSdkError(lambda: self.kms.list_key_detail(ListKeyDetailRequest(body=missing)), 404, "KMS.0207")

    def test_secret_with_and_without_kms_key_id(self):
        key_id = self.create_key(key_alias=unique("for-secrets")).key_info.key_id
        with_key = unique("with-key")
        created = self.create_secret(name=with_key, secret_string="value with key", kms_key_id=key_id)
        self.assertEqual(created.secret.kms_key_id, key_id)
        self.assertEqual(created.secret.state, "ENABLED")
        self.assertIsInstance(created.secret.create_time, int)
        self.assertEqual(self.read(with_key).secret_string, "value with key")

        default = unique("default.key")
        created = self.create_secret(name=default, secret_string="value under csms/default")
        default_key = created.secret.kms_key_id
        self.assertNotEqual(default_key, key_id)
        details = self.kms.list_key_detail(ListKeyDetailRequest(body=OperateKeyRequestBody(key_id=default_key))).key_info
        self.assertEqual(details.key_alias, "csms/default")
        self.assertEqual(details.default_key_flag, "1")
        version = self.read(default, "v1")
        self.assertEqual(version.secret_string, "value under csms/default")
        self.assertEqual(version.version_metadata.id, "v1")
        self.assertEqual(version.version_metadata.version_stages, ["SYSCURRENT"])
        shown = self.csms.show_secret(ShowSecretRequest(secret_name=default)).secret
        self.assertEqual(shown.name, default)

    def test_binary_secret(self):
        name = unique("binary")
        self.create_secret(name=name, secret_binary="3q2+7w==")
        version = self.read(name)
        self.assertEqual(version.secret_binary, "3q2+7w==")
        self.assertIsNone(version.secret_string)

    def test_secret_errors(self):
        self.assertSdkError(lambda: self.create_secret(name=unique("both"), secret_string="a", secret_binary="YQ=="), 400, "CSMS.0002")
        self.assertSdkError(lambda: self.create_secret(name=unique("neither")), 400, "CSMS.0002")
        self.assertSdkError(lambda: self.create_secret(name=unique("big"), secret_string="x" * 32769), 400, "CSMS.0002")
        name = unique("dup")
        self.create_secret(name=name, secret_string="a")
        self.assertSdkError(lambda: self.create_secret(name=name, secret_string="b"), 400, "CSMS.0002")
        self.assertSdkError(lambda: self.read(unique("missing")), 400, "CSMS.0106")


if __name__ == "__main__":
    unittest.main(verbosity=2)
