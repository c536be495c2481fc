"""The official Huawei Cloud Python SDK against a running opendew gateway.

Run by crates/opendew/tests/sdk.rs, which starts the stack and passes its
endpoint and credentials in OPENDEW_ENDPOINT, OPENDEW_AK, OPENDEW_SK and
OPENDEW_PROJECT_ID. Only the endpoint differs from talking to Huawei Cloud.
"""

import base64
import datetime
import hashlib
import json
import os
import time
import unittest
import uuid

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.signer.algorithm import SigningAlgorithm
from huaweicloudsdkcsms.v1 import (
    ChangeUsersPassword,
    CheckSecretsRequest,
    CheckSecretsRequestBody,
    CreateAgencyRequest,
    CreateAgencyRequestBody,
    CreateGrantsRequest,
    DeleteGrantRequest,
    GrantSecretReqBody,
    ListGrantsRequest as CsmsListGrantsRequest,
    ListUsersRequest,
    ShowAgencyRequest,
    ShowSecretFunctionTemplatesRequest,
    ShowSecretsConfigRequest,
    ShowUserDetailRequest,
    UpdateGrantRequest,
    UpdateSecretsConfigRequest,
    UpdateSecretsConfigRequestBody,
    UpdateUserPasswordRequest,
    BatchImportSecretsRequest,
    CreateSecretEventRequest,
    CreateSecretEventRequestBody,
    DeleteSecretEventRequest,
    ImportSecretsRequest,
    ListNotificationRecordsRequest,
    ListSecretEventsRequest,
    ListSecretTaskRequest,
    Notification,
    RotateSecretRequest,
    ShowSecretEventRequest,
    UpdateSecretEventRequest,
    UpdateSecretEventRequestBody,
    BatchCreateOrDeleteTagsRequest,
    BatchCreateOrDeleteTagsRequestBody,
    CreatePasswordRequestBody,
    CreateSecretRequest,
    CreateSecretRequestBody,
    CreateSecretTagRequest,
    CreateSecretTagRequestBody,
    CreateSecretVersionRequest,
    CreateSecretVersionRequestBody,
    CsmsClient,
    DeleteSecretForScheduleRequest,
    DeleteSecretForScheduleRequestBody,
    DeleteSecretRequest,
    DeleteSecretStageRequest,
    DeleteSecretTagRequest,
    DownloadSecretBlobRequest,
    GenerateRandomPasswordRequest,
    ListProjectSecretsTagsRequest,
    ListResourceInstancesRequest,
    ListResourceInstancesRequestBody,
    ListSecretsRequest,
    ListSecretTagsRequest,
    ListSecretVersionsRequest,
    RestoreSecretRequest,
    ShowSecretRequest,
    ShowSecretStageRequest,
    ShowSecretVersionRequest,
    Tag,
    TagItem,
    TagMatches,
    UpdateSecretRequest,
    UpdateSecretRequestBody,
    UpdateSecretStageRequest,
    UpdateSecretStageRequestBody,
    UpdateVersionRequest,
    UpdateVersionRequestBody,
    UploadSecretBlobRequest,
    UploadSecretBlobRequestBody,
)
from huaweicloudsdkkms.v2 import (
    CreateParametersForImportRequest,
    DeleteImportedKeyMaterialRequest,
    GetParametersForImportRequestBody,
    ImportKeyMaterialRequest,
    ImportKeyMaterialRequestBody,
    CancelGrantRequest,
    CancelSelfGrantRequest,
    CreateGrantRequest,
    CreateGrantRequestBody,
    ListGrantsRequest,
    ListGrantsRequestBody,
    ListRetirableGrantsRequest,
    ListRetirableGrantsRequestBody,
    RevokeGrantRequestBody,
    AssociateAliasRequest,
    AssociateAliasRequestBody,
    BatchCreateKmsTagsRequest,
    BatchCreateKmsTagsRequestBody,
    CreateAliasRequest,
    CreateAliasRequestBody,
    CreateKmsTagRequest,
    CreateKmsTagRequestBody,
    DeleteAliasRequest,
    DeleteAliasRequestBody,
    DeleteTagRequest,
    DisableKeyRotationRequest,
    EnableKeyRotationRequest,
    ListAliasesRequest,
    ListKmsByTagsRequest,
    ListKmsByTagsRequestBody,
    ListKmsTagsRequest,
    RotateOnDemandRequest,
    RotateOnDemandRequestBody,
    ShowKeyRotationStatusRequest,
    ShowKmsTagsRequest,
    UpdateKeyRotationIntervalRequest,
    UpdateKeyRotationIntervalRequestBody,
    CancelKeyDeletionRequest,
    CreateDatakeyRequest,
    CreateDatakeyRequestBody,
    CreateDatakeyWithoutPlaintextRequest,
    CreateKeyRequest,
    CreateKeyRequestBody,
    CreateRandomRequest,
    DecryptDataRequest,
    DecryptDataRequestBody,
    DecryptDatakeyRequest,
    DecryptDatakeyRequestBody,
    DeleteKeyRequest,
    DisableKeyRequest,
    EnableKeyRequest,
    EncryptDataRequest,
    EncryptDataRequestBody,
    EncryptDatakeyRequest,
    EncryptDatakeyRequestBody,
    GenRandomRequestBody,
    KmsClient,
    ListKeyDetailRequest,
    ListKeysRequest,
    ListKeysRequestBody,
    OperateKeyRequestBody,
    ScheduleKeyDeletionRequestBody,
    ShowUserInstancesRequest,
    ShowUserQuotasRequest,
    ShowVersionRequest,
    ShowVersionsRequest,
    UpdateKeyAliasRequest,
    UpdateKeyAliasRequestBody,
    UpdateKeyDescriptionRequest,
    UpdateKeyDescriptionRequestBody,
)
from huaweicloudsdkkms.v2 import (
    GenerateMacRequest,
    GenerateMacRequestBody,
    ReEncryptRequest,
    ReEncryptRequestBody,
    ShowPublicKeyRequest,
    SignRequest,
    SignRequestBody,
    ValidateSignatureRequest,
    VerifyMacRequest,
    VerifyMacRequestBody,
    VerifyRequestBody,
)
from huaweicloudsdkkms.v2 import Tag as KmsTag
from huaweicloudsdkkms.v2 import TagItem as KmsTagItem


def postgres_holds(role, password):
    """Whether PostgreSQL stores `password` for `role`: its SCRAM verifier,
    recomputed by hashlib from the stored salt and count (the local server
    trusts logins, so a login proves nothing)."""
    import hmac
    import subprocess
    url = os.environ["OPENDEW_ROTATION_PG_URL"]
    stored = subprocess.run(["psql", url, "-Atc", "SELECT rolpassword FROM pg_authid WHERE rolname = '%s'" % role],
                            check=True, capture_output=True, text=True).stdout.strip()
    head, keys = stored.rsplit("$", 1)
    iterations, salt = head.split("$")[1].split(":")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return base64.b64encode(hashlib.sha256(client_key).digest()).decode() == keys.split(":")[0]


def mariadb_login(user, password):
    """Whether `user` logs in to the local MariaDB with `password`."""
    import subprocess
    done = subprocess.run(["mysql", "-h", "127.0.0.1", "-u", user, "--password=" + password, "-e", "SELECT 1"],
                          capture_output=True)
    return done.returncode == 0


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


class Base(unittest.TestCase):
    """Clients and helpers shared by the test classes."""

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

    def elsewhere(self):
        """This account's client on another account's project path (403)."""
        credentials = BasicCredentials(os.environ["OPENDEW_AK"], os.environ["OPENDEW_SK"], os.environ["OPENDEW_GRANTEE_PROJECT_ID"])
        return CsmsClient.new_builder().with_credentials(credentials).with_endpoint(os.environ["OPENDEW_ENDPOINT"]).build()

    def create_secret(self, **fields):
        return self.csms.create_secret(CreateSecretRequest(body=CreateSecretRequestBody(**fields)))

    def read(self, name, version="latest"):
        return self.csms.show_secret_version(ShowSecretVersionRequest(secret_name=name, version_id=version)).version


class SdkTest(Base):
    """Keys and secrets: create, read back, and the documented errors."""

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


def raw(response):
    """The response's JSON exactly as the server sent it."""
    return json.loads(response.raw_content.decode("utf-8"))


class KmsOperationsTest(Base):
    """Every Tier 1 KMS operation through the official SDK, with the raw
    JSON types checked against the spec (numbers that travel as strings
    stay strings)."""

    def assertTypes(self, obj, types):
        for field, kind in types.items():
            self.assertIn(field, obj)
            self.assertIsInstance(obj[field], kind, "%s in %s" % (field, obj))
            if kind is int:
                self.assertNotIsInstance(obj[field], bool)

    def new_key(self):
        return self.create_key(key_alias=unique("ops")).key_info.key_id

    def op(self, body):
        return OperateKeyRequestBody(key_id=body)

    def test_lifecycle(self):
        key_id = self.new_key()
        disabled = self.kms.disable_key(DisableKeyRequest(body=self.op(key_id)))
        self.assertEqual(disabled.key_info.key_state, "3")
        self.assertTypes(raw(disabled)["key_info"], {"key_id": str, "key_state": str})
        self.assertSdkError(lambda: self.kms.disable_key(DisableKeyRequest(body=self.op(key_id))), 400, "KMS.1301")
        self.assertSdkError(
            lambda: self.kms.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id))), 400, "KMS.0209"
        )
        enabled = self.kms.enable_key(EnableKeyRequest(body=self.op(key_id)))
        self.assertEqual(enabled.key_info.key_state, "2")
        self.assertSdkError(lambda: self.kms.enable_key(EnableKeyRequest(body=self.op(key_id))), 400, "KMS.1201")

        schedule = lambda days: self.kms.delete_key(
            DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(key_id=key_id, pending_days=days))
        )
        self.assertSdkError(lambda: schedule("6"), 400, "KMS.1401")
        scheduled = schedule("30")
        self.assertEqual(scheduled.key_state, "4")
        self.assertTypes(raw(scheduled), {"key_id": str, "key_state": str})
        self.assertSdkError(lambda: schedule("30"), 400, "KMS.1402")
        details = self.kms.list_key_detail(ListKeyDetailRequest(body=self.op(key_id))).key_info
        self.assertEqual(details.key_state, "4")
        self.assertEqual(len(details.scheduled_deletion_date), 13)
        cancelled = self.kms.cancel_key_deletion(CancelKeyDeletionRequest(body=self.op(key_id)))
        self.assertEqual(cancelled.key_state, "3")
        self.assertSdkError(lambda: self.kms.cancel_key_deletion(CancelKeyDeletionRequest(body=self.op(key_id))), 400, "KMS.1501")

        alias = unique("renamed")
        renamed = self.kms.update_key_alias(
            UpdateKeyAliasRequest(body=UpdateKeyAliasRequestBody(key_id=key_id, key_alias=alias))
        )
        self.assertEqual(raw(renamed)["key_info"], {"key_id": key_id, "key_alias": alias})
        self.assertSdkError(
            lambda: self.kms.update_key_alias(UpdateKeyAliasRequest(body=UpdateKeyAliasRequestBody(key_id=key_id, key_alias="x/default"))),
            400,
            "KMS.1101",
        )
        described = self.kms.update_key_description(
            UpdateKeyDescriptionRequest(body=UpdateKeyDescriptionRequestBody(key_id=key_id, key_description="new"))
        )
        self.assertEqual(raw(described)["key_info"], {"key_id": key_id, "key_description": "new"})
        self.assertSdkError(
            lambda: self.kms.update_key_description(
                UpdateKeyDescriptionRequest(body=UpdateKeyDescriptionRequestBody(key_id=key_id, key_description="x" * 256))
            ),
            400,
            "KMS.1103",
        )

    def test_data_keys(self):
        key_id = self.new_key()
        made = self.kms.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id, datakey_length="512")))
        self.assertTypes(raw(made), {"key_id": str, "plain_text": str, "cipher_text": str})
        self.assertEqual(len(made.plain_text), 128)
        opened = self.kms.decrypt_datakey(
            DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(key_id=key_id, cipher_text=made.cipher_text, datakey_cipher_length="64"))
        )
        self.assertTypes(raw(opened), {"data_key": str, "datakey_length": str, "datakey_dgst": str})
        self.assertEqual(opened.data_key, made.plain_text)
        self.assertEqual(opened.datakey_dgst, hashlib.sha256(bytes.fromhex(made.plain_text)).hexdigest().upper())

        bare = self.kms.create_datakey_without_plaintext(
            CreateDatakeyWithoutPlaintextRequest(body=CreateDatakeyRequestBody(key_id=key_id, key_spec="AES_128"))
        )
        self.assertNotIn("plain_text", raw(bare))
        self.assertSdkError(
            lambda: self.kms.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id, datakey_length="12"))),
            400,
            "KMS.1903",
        )

        for size in (1, 1024):
            for aad in (None, "context"):
                dek = os.urandom(size)
                plain = dek.hex() + hashlib.sha256(dek).hexdigest()
                sealed = self.kms.encrypt_datakey(
                    EncryptDatakeyRequest(
                        body=EncryptDatakeyRequestBody(
                            key_id=key_id, plain_text=plain, datakey_plain_length=str(size), additional_authenticated_data=aad
                        )
                    )
                )
                self.assertTypes(raw(sealed), {"key_id": str, "cipher_text": str, "datakey_length": str})
                back = self.kms.decrypt_datakey(
                    DecryptDatakeyRequest(
                        body=DecryptDatakeyRequestBody(
                            key_id=key_id,
                            cipher_text=sealed.cipher_text,
                            datakey_cipher_length=str(size),
                            additional_authenticated_data=aad,
                        )
                    )
                )
                self.assertEqual(bytes.fromhex(back.data_key), dek)
                self.assertSdkError(
                    lambda: self.kms.decrypt_datakey(
                        DecryptDatakeyRequest(
                            body=DecryptDatakeyRequestBody(
                                key_id=key_id,
                                cipher_text=sealed.cipher_text,
                                datakey_cipher_length=str(size),
                                additional_authenticated_data="wrong",
                            )
                        )
                    ),
                    400,
                    "KMS.2201",
                )
        dek = os.urandom(32)
        self.assertSdkError(
            lambda: self.kms.encrypt_datakey(
                EncryptDatakeyRequest(
                    body=EncryptDatakeyRequestBody(key_id=key_id, plain_text=dek.hex() + "00" * 32, datakey_plain_length="32")
                )
            ),
            400,
            "KMS.2103",
        )

    def test_data(self):
        key_id = self.new_key()
        for text in ("x", "y" * 4096):
            for aad in (None, "ctx"):
                sealed = self.kms.encrypt_data(
                    EncryptDataRequest(body=EncryptDataRequestBody(key_id=key_id, plain_text=text, additional_authenticated_data=aad))
                )
                self.assertTypes(raw(sealed), {"key_id": str, "cipher_text": str})
                base64.b64decode(sealed.cipher_text, validate=True)
                opened = self.kms.decrypt_data(
                    DecryptDataRequest(body=DecryptDataRequestBody(cipher_text=sealed.cipher_text, additional_authenticated_data=aad))
                )
                self.assertTypes(raw(opened), {"key_id": str, "plain_text": str, "plain_text_base64": str})
                self.assertEqual(opened.plain_text, text)
                self.assertEqual(opened.key_id, key_id)
        tampered = base64.b64decode(sealed.cipher_text)
        tampered = base64.b64encode(tampered[:-1] + bytes([tampered[-1] ^ 1])).decode()
        self.assertSdkError(
            lambda: self.kms.decrypt_data(DecryptDataRequest(body=DecryptDataRequestBody(cipher_text=tampered))), 400, "KMS.2201"
        )

    def test_random_quotas_instances_versions(self):
        rnd = self.kms.create_random(CreateRandomRequest(body=GenRandomRequestBody(random_data_length="512")))
        self.assertEqual(len(rnd.random_data), 128)
        self.assertSdkError(
            lambda: self.kms.create_random(CreateRandomRequest(body=GenRandomRequestBody(random_data_length="12"))), 400, "KMS.1802"
        )
        quotas = self.kms.show_user_quotas(ShowUserQuotasRequest())
        resources = {r["type"]: r for r in raw(quotas)["quotas"]["resources"]}
        self.assertTypes(resources["CMK"], {"type": str, "used": int, "quota": int})
        instances = self.kms.show_user_instances(ShowUserInstancesRequest())
        self.assertTypes(raw(instances), {"instance_num": int})
        self.assertEqual(instances.instance_num, resources["CMK"]["used"])
        versions = self.kms.show_versions(ShowVersionsRequest())
        self.assertEqual(versions.versions[0].id, "v1.0")
        version = self.kms.show_version(ShowVersionRequest(version_id="v1.0"))
        self.assertEqual(raw(version)["version"]["status"], "CURRENT")


class SigningVariantsTest(Base):
    """The SDK's SM3 signer is accepted like the default one."""

    def test_hmac_sm3(self):
        config = HttpConfig.get_default_config()
        config.signing_algorithm = SigningAlgorithm.HMAC_SM3
        credentials = BasicCredentials(os.environ["OPENDEW_AK"], os.environ["OPENDEW_SK"], os.environ["OPENDEW_PROJECT_ID"])
        kms = (
            KmsClient.new_builder()
            .with_http_config(config)
            .with_credentials(credentials)
            .with_endpoint(os.environ["OPENDEW_ENDPOINT"])
            .build()
        )
        created = kms.create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias=unique("sm3"))))
        self.assertEqual(len(created.key_info.key_id), 36)
        wrong = BasicCredentials(os.environ["OPENDEW_AK"], "not-the-secret-key", os.environ["OPENDEW_PROJECT_ID"])
        bad = KmsClient.new_builder().with_http_config(config).with_credentials(wrong).with_endpoint(os.environ["OPENDEW_ENDPOINT"]).build()
        with self.assertRaises(ClientRequestException) as caught:
            bad.list_keys(ListKeysRequest(body=ListKeysRequestBody()))
        self.assertEqual(caught.exception.status_code, 401)
        self.assertEqual(caught.exception.error_code, "APIGW.0301")


class ProjectLookupTest(Base):
    """Credentials without a project id and a region endpoint: the SDK asks
    IAM (GET /v3/projects?name=<region>) for the project first."""

    def test_ak_sk_and_region_only(self):
        from huaweicloudsdkcore.region.region import Region

        endpoint = os.environ["OPENDEW_ENDPOINT"]
        os.environ["HUAWEICLOUD_SDK_IAM_ENDPOINT"] = endpoint
        credentials = BasicCredentials(os.environ["OPENDEW_AK"], os.environ["OPENDEW_SK"])
        kms = KmsClient.new_builder().with_credentials(credentials).with_region(Region("local-1", endpoint)).build()
        created = kms.create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias=unique("no-project"))))
        details = kms.list_key_detail(ListKeyDetailRequest(body=OperateKeyRequestBody(key_id=created.key_info.key_id))).key_info
        self.assertEqual(details.key_state, "2")


class IamLookupsTest(Base):
    """The IAM reads real clients make besides projects: the SDK's own domain
    lookup (global credentials without a domain id; the Terraform provider
    with domain_name) and the service catalog (the Vault/OpenBao seal)."""

    def signed_get(self, credentials, path):
        from urllib.parse import urlparse

        from huaweicloudsdkcore.sdk_request import SdkRequest

        url = urlparse(os.environ["OPENDEW_ENDPOINT"])
        http_client = self.kms.get_http_client()
        request = SdkRequest(method="GET", schema=url.scheme, host=url.netloc, resource_path=path, header_params={},
                             query_params=[], body="", signing_algorithm=http_client.config.signing_algorithm)
        request = credentials.process_auth_request(request, http_client).result()
        return http_client.do_request_sync(request)

    def test_domains_through_the_sdk(self):
        from huaweicloudsdkcore.auth.credentials import GlobalCredentials

        endpoint = os.environ["OPENDEW_ENDPOINT"]
        credentials = GlobalCredentials("%s" % os.environ["OPENDEW_AK"], os.environ["OPENDEW_SK"]).with_iam_endpoint(endpoint)
        credentials.process_auth_params(self.kms.get_http_client(), "local-1")
        self.assertEqual(len(credentials.domain_id), 32)
        wrong = GlobalCredentials(os.environ["OPENDEW_AK"] + "X", "not-the-secret-key").with_iam_endpoint(endpoint)
        with self.assertRaises(Exception):
            wrong.process_auth_params(self.kms.get_http_client(), "local-1")

    def test_catalog(self):
        credentials = BasicCredentials(os.environ["OPENDEW_AK"], os.environ["OPENDEW_SK"], self.project_id)
        catalog = self.signed_get(credentials, "/v3/auth/catalog").json()["catalog"]
        kms = [entry for entry in catalog if entry["type"] == "kms"]
        self.assertEqual(len(kms), 1)
        public = [e for e in kms[0]["endpoints"] if e["interface"] == "public" and e["region"] == "local-1"]
        self.assertEqual(len(public), 1)
        self.assertTrue(public[0]["url"].endswith("/v1.0/"), public[0]["url"])
        wrong = BasicCredentials(os.environ["OPENDEW_AK"], "not-the-secret-key", self.project_id)
        with self.assertRaises(ClientRequestException) as caught:
            self.signed_get(wrong, "/v3/auth/catalog")
        self.assertEqual(caught.exception.status_code, 401)


class TemporaryCredentialsTest(Base):
    """Temporary AK/SK and security token from POST /v3.0/OS-CREDENTIAL/securitytokens,
    used by the SDK as Huawei's STS credentials are (auth.md 1.9)."""

    def issue(self, duration=900):
        import requests

        endpoint = os.environ["OPENDEW_ENDPOINT"]
        login = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": os.environ["OPENDEW_USER"], "password": os.environ["OPENDEW_PASSWORD"],
            "domain": {"name": os.environ["OPENDEW_DOMAIN"]}}}},
            "scope": {"project": {"id": self.project_id}}}}
        token = requests.post(endpoint + "/v3/auth/tokens", json=login).headers["X-Subject-Token"]
        body = {"auth": {"identity": {"methods": ["token"], "token": {"duration_seconds": duration}}}}
        response = requests.post(endpoint + "/v3.0/OS-CREDENTIAL/securitytokens", json=body, headers={"X-Auth-Token": token})
        self.assertEqual(response.status_code, 201, response.text)
        credential = response.json()["credential"]
        for field in ("access", "secret", "securitytoken", "expires_at"):
            self.assertIsInstance(credential[field], str, field)
        return credential

    def client(self, ak, sk, security_token=None):
        credentials = BasicCredentials(ak, sk, self.project_id)
        if security_token is not None:
            credentials = credentials.with_security_token(security_token)
        return KmsClient.new_builder().with_credentials(credentials).with_endpoint(os.environ["OPENDEW_ENDPOINT"]).build()

    def test_temporary_credentials(self):
        credential = self.issue()
        kms = self.client(credential["access"], credential["secret"], credential["securitytoken"])
        created = kms.create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias=unique("sts"))))
        self.assertEqual(len(created.key_info.key_id), 36)
        # The temporary AK alone, or with a damaged or foreign token, is refused.
        without = self.client(credential["access"], credential["secret"])
        self.assertSdkError(lambda: without.create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias=unique("x")))), 401, "APIGW.0301")
        damaged = credential["securitytoken"][:-4] + ("AAAA" if not credential["securitytoken"].endswith("AAAA") else "BBBB")
        broken = self.client(credential["access"], credential["secret"], damaged)
        self.assertSdkError(lambda: broken.create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias=unique("x")))), 401, "APIGW.0301")
        other = self.issue()
        mixed = self.client(credential["access"], credential["secret"], other["securitytoken"])
        self.assertSdkError(lambda: mixed.create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias=unique("x")))), 401, "APIGW.0301")

    def test_duration_is_bounded(self):
        import requests

        endpoint = os.environ["OPENDEW_ENDPOINT"]
        body = {"auth": {"identity": {"methods": ["token"], "token": {"duration_seconds": 60}}}}
        login = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": os.environ["OPENDEW_USER"], "password": os.environ["OPENDEW_PASSWORD"],
            "domain": {"name": os.environ["OPENDEW_DOMAIN"]}}}},
            "scope": {"project": {"id": self.project_id}}}}
        token = requests.post(endpoint + "/v3/auth/tokens", json=login).headers["X-Subject-Token"]
        response = requests.post(endpoint + "/v3.0/OS-CREDENTIAL/securitytokens", json=body, headers={"X-Auth-Token": token})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["code"], 400)


class ErrorPathsTest(Base):
    """An error answer from every operation the gateway serves: bad input
    where the operation has any, a wrong signature otherwise. (The suite
    that runs this checks, from the gateway's own route list, that every
    operation answered both a success and an error.)"""

    def unsigned(self):
        endpoint = os.environ["OPENDEW_ENDPOINT"]
        wrong = BasicCredentials(os.environ["OPENDEW_AK"], "not-the-secret-key", self.project_id)
        return (
            KmsClient.new_builder().with_credentials(wrong).with_endpoint(endpoint).build(),
            CsmsClient.new_builder().with_credentials(wrong).with_endpoint(endpoint).build(),
        )

    def test_kms_errors(self):
        missing = str(uuid.uuid4())
        self.assertSdkError(
            lambda: self.kms.create_datakey_without_plaintext(
                CreateDatakeyWithoutPlaintextRequest(body=CreateDatakeyRequestBody(key_id=missing, datakey_length="256"))
            ),
            404,
            "KMS.0207",
        )
        self.assertSdkError(
            lambda: self.kms.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(key_id=missing, plain_text="x"))),
            404,
            "KMS.0207",
        )
        kms, _ = self.unsigned()
        self.assertSdkError(lambda: kms.show_user_quotas(ShowUserQuotasRequest()), 401, "APIGW.0301")
        self.assertSdkError(lambda: kms.show_user_instances(ShowUserInstancesRequest()), 401, "APIGW.0301")

    def test_project_lookup_error(self):
        import requests

        response = requests.get(os.environ["OPENDEW_ENDPOINT"] + "/v3/projects?name=local-1")
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["error_code"], "APIGW.0301")

    def test_csms_errors(self):
        absent = unique("absent")
        for call in (
            lambda: self.csms.update_secret(UpdateSecretRequest(secret_name=absent, body=UpdateSecretRequestBody(description="x"))),
            lambda: self.csms.delete_secret(DeleteSecretRequest(secret_name=absent)),
            lambda: self.csms.delete_secret_for_schedule(
                DeleteSecretForScheduleRequest(secret_name=absent, body=DeleteSecretForScheduleRequestBody(recovery_window_in_days=7))
            ),
            lambda: self.csms.create_secret_version(
                CreateSecretVersionRequest(secret_name=absent, body=CreateSecretVersionRequestBody(secret_string="x"))
            ),
            lambda: self.csms.list_secret_versions(ListSecretVersionsRequest(secret_name=absent)),
            lambda: self.csms.update_version(
                UpdateVersionRequest(secret_name=absent, version_id="v1", body=UpdateVersionRequestBody(expire_time=1900000000000))
            ),
            lambda: self.csms.update_secret_stage(
                UpdateSecretStageRequest(secret_name=absent, stage_name="BLUE", body=UpdateSecretStageRequestBody(version_id="v1"))
            ),
            lambda: self.csms.download_secret_blob(DownloadSecretBlobRequest(secret_name=absent)),
        ):
            with self.assertRaises(ClientRequestException) as caught:
                call()
            self.assertIn(caught.exception.status_code, (400, 404), str(caught.exception))
            self.assertTrue(caught.exception.error_code.startswith("CSMS."), str(caught.exception))
        missing_id = str(uuid.uuid4())
        for call in (
            lambda: self.csms.list_secret_tags(ListSecretTagsRequest(secret_id=missing_id)),
            lambda: self.csms.batch_create_or_delete_tags(
                BatchCreateOrDeleteTagsRequest(
                    secret_id=missing_id, body=BatchCreateOrDeleteTagsRequestBody(action="create", tags=[TagItem(key="k", value="v")])
                )
            ),
            lambda: self.csms.delete_secret_tag(DeleteSecretTagRequest(secret_id=missing_id, key="k")),
        ):
            with self.assertRaises(ClientRequestException) as caught:
                call()
            self.assertIn(caught.exception.status_code, (400, 404), str(caught.exception))
        _, csms = self.unsigned()
        for call in (
            lambda: csms.list_secrets(ListSecretsRequest()),
            lambda: csms.list_project_secrets_tags(ListProjectSecretsTagsRequest()),
            lambda: csms.generate_random_password(GenerateRandomPasswordRequest(body=CreatePasswordRequestBody(length=24))),
            lambda: csms.list_resource_instances(
                ListResourceInstancesRequest(resource_instances="resource_instances", body=ListResourceInstancesRequestBody(action="count"))
            ),
        ):
            with self.assertRaises(ClientRequestException) as caught:
                call()
            self.assertEqual(caught.exception.status_code, 401, str(caught.exception))

    def test_a_secret_named_restore(self):
        """`restore` is both a path of its own (upload_secret_blob) and a
        valid secret name: show, update and delete reach the secret."""
        def missing(call):
            with self.assertRaises(ClientRequestException) as caught:
                call()
            self.assertIn(caught.exception.status_code, (400, 404), str(caught.exception))
            self.assertTrue(caught.exception.error_code.startswith("CSMS."), str(caught.exception))

        missing(lambda: self.csms.show_secret(ShowSecretRequest(secret_name="restore")))
        self.create_secret(name="restore", secret_string="named restore")
        self.assertEqual(self.csms.show_secret(ShowSecretRequest(secret_name="restore")).secret.name, "restore")
        self.csms.update_secret(UpdateSecretRequest(secret_name="restore", body=UpdateSecretRequestBody(description="d")))
        self.csms.delete_secret(DeleteSecretRequest(secret_name="restore"))
        missing(lambda: self.csms.update_secret(UpdateSecretRequest(secret_name="restore", body=UpdateSecretRequestBody(description="d"))))
        missing(lambda: self.csms.delete_secret(DeleteSecretRequest(secret_name="restore")))


class CsmsOperationsTest(Base):
    """Every Tier 1 CSMS operation through the official SDK, with raw JSON
    types checked (real numbers and booleans, millisecond timestamps)."""

    def assertTypes(self, obj, types):
        KmsOperationsTest.assertTypes(self, obj, types)

    SECRET = {"id": str, "name": str, "state": str, "kms_key_id": str, "description": str, "create_time": int,
              "update_time": int, "secret_type": str, "auto_rotation": bool, "event_subscriptions": list,
              "enterprise_project_id": str}
    META = {"id": str, "create_time": int, "kms_key_id": str, "secret_name": str, "version_stages": list}

    def test_lifecycle(self):
        name = unique("sdk-life")
        self.create_secret(name=name, secret_string="one")
        listed = self.csms.list_secrets(ListSecretsRequest(limit="1000"))
        self.assertIn(name, [s.name for s in listed.secrets])
        for secret in raw(listed)["secrets"]:
            self.assertTypes(secret, self.SECRET)
        self.assertIsInstance(raw(listed)["page_info"]["current_count"], int)

        updated = self.csms.update_secret(UpdateSecretRequest(secret_name=name, body=UpdateSecretRequestBody(description="two")))
        self.assertEqual(updated.secret.description, "two")
        self.assertTypes(raw(updated)["secret"], self.SECRET)

        v2 = self.csms.create_secret_version(
            CreateSecretVersionRequest(secret_name=name, body=CreateSecretVersionRequestBody(secret_string="second", expire_time=1900000000000))
        )
        self.assertEqual(v2.version_metadata.id, "v2")
        self.assertTypes(raw(v2)["version_metadata"], dict(self.META, expire_time=int))
        versions = self.csms.list_secret_versions(ListSecretVersionsRequest(secret_name=name, limit=10))
        self.assertEqual([v.id for v in versions.version_metadatas], ["v1", "v2"])
        self.assertEqual(versions.version_metadatas[0].version_stages, ["SYSPREVIOUS"])
        self.assertEqual(self.read(name).secret_string, "second")

        expiry = self.csms.update_version(
            UpdateVersionRequest(secret_name=name, version_id="v1", body=UpdateVersionRequestBody(expire_time=1800000000000))
        )
        self.assertEqual(expiry.version_metadata.expire_time, 1800000000000)

        stage = self.csms.update_secret_stage(
            UpdateSecretStageRequest(secret_name=name, stage_name="BLUE", body=UpdateSecretStageRequestBody(version_id="v1"))
        )
        self.assertTypes(raw(stage)["stage"], {"name": str, "update_time": int, "secret_name": str, "version_id": str})
        shown = self.csms.show_secret_stage(ShowSecretStageRequest(secret_name=name, stage_name="BLUE"))
        self.assertEqual(shown.stage.version_id, "v1")
        self.csms.delete_secret_stage(DeleteSecretStageRequest(secret_name=name, stage_name="BLUE"))
        self.assertSdkError(lambda: self.csms.show_secret_stage(ShowSecretStageRequest(secret_name=name, stage_name="BLUE")), 400, "CSMS.0005")
        self.assertSdkError(
            lambda: self.csms.delete_secret_stage(DeleteSecretStageRequest(secret_name=name, stage_name="SYSCURRENT")), 400, "CSMS.0105"
        )

        scheduled = self.csms.delete_secret_for_schedule(
            DeleteSecretForScheduleRequest(secret_name=name, body=DeleteSecretForScheduleRequestBody(recovery_window_in_days=7))
        )
        self.assertEqual(scheduled.secret.state, "PENDING_DELETE")
        self.assertIsInstance(raw(scheduled)["secret"]["scheduled_delete_time"], int)
        self.assertSdkError(lambda: self.read(name), 400, "CSMS.0103")
        restored = self.csms.restore_secret(RestoreSecretRequest(secret_name=name))
        self.assertEqual(restored.secret.state, "ENABLED")
        self.assertSdkError(lambda: self.csms.restore_secret(RestoreSecretRequest(secret_name=name)), 400, "CSMS.0108")

        blob = self.csms.download_secret_blob(DownloadSecretBlobRequest(secret_name=name)).secret_blob
        self.csms.delete_secret(DeleteSecretRequest(secret_name=name))
        self.assertSdkError(lambda: self.csms.show_secret(ShowSecretRequest(secret_name=name)), 400, "CSMS.0106")
        back = self.csms.upload_secret_blob(UploadSecretBlobRequest(body=UploadSecretBlobRequestBody(secret_blob=blob)))
        self.assertEqual(back.secret.name, name)
        self.assertEqual(self.read(name, "v1").secret_string, "one")
        self.assertEqual(self.read(name, "v2").secret_string, "second")
        self.assertSdkError(
            lambda: self.csms.upload_secret_blob(UploadSecretBlobRequest(body=UploadSecretBlobRequestBody(secret_blob=blob))), 400, "CSMS.0002"
        )

    def test_tags_search_and_passwords(self):
        name = unique("sdk-tags")
        secret_id = self.create_secret(name=name, secret_string="t").secret.id
        self.csms.create_secret_tag(
            CreateSecretTagRequest(secret_id=secret_id, body=CreateSecretTagRequestBody(tag=TagItem(key="env", value="sdk")))
        )
        self.csms.batch_create_or_delete_tags(
            BatchCreateOrDeleteTagsRequest(
                secret_id=secret_id,
                body=BatchCreateOrDeleteTagsRequestBody(action="create", tags=[TagItem(key="team", value="a"), TagItem(key="tmp", value="b")]),
            )
        )
        self.csms.delete_secret_tag(DeleteSecretTagRequest(secret_id=secret_id, key="tmp"))
        tags = self.csms.list_secret_tags(ListSecretTagsRequest(secret_id=secret_id))
        self.assertEqual(sorted((t.key, t.value) for t in tags.tags), [("env", "sdk"), ("team", "a")])
        project = self.csms.list_project_secrets_tags(ListProjectSecretsTagsRequest())
        self.assertIn("env", [t.key for t in project.tags])
        found = self.csms.list_resource_instances(
            ListResourceInstancesRequest(
                resource_instances="resource_instances",
                body=ListResourceInstancesRequestBody(action="filter", limit="10", offset="0", tags=[Tag(key="env", values=["sdk"])],
                                                      matches=[TagMatches(key="resource_name", value=name)]),
            )
        )
        self.assertEqual(found.total_count, 1)
        self.assertEqual(found.resources[0].resource_id, secret_id)
        self.assertIsInstance(raw(found)["total_count"], int)
        self.assertSdkError(
            lambda: self.csms.create_secret_tag(
                CreateSecretTagRequest(secret_id=str(uuid.uuid4()), body=CreateSecretTagRequestBody(tag=TagItem(key="a", value="b")))
            ),
            400,
            "CSMS.0005",
        )
        password = self.csms.generate_random_password(
            GenerateRandomPasswordRequest(body=CreatePasswordRequestBody(length=24, exclude_punctuation=True))
        ).password
        self.assertEqual(len(password), 24)
        self.assertTrue(password.isalnum())


class KeyManagementTest(Base):
    """Rotation, tags and aliases (kms-api.md §3.1, §3.2, §3.8): each with
    its documented types, and its documented errors."""

    def new_key(self, prefix):
        return self.create_key(key_alias=unique(prefix)).key_info.key_id

    def test_rotation(self):
        key_id = self.new_key("sdk-rot")
        status = self.kms.show_key_rotation_status(ShowKeyRotationStatusRequest(body=OperateKeyRequestBody(key_id=key_id)))
        self.assertEqual((status.key_rotation_enabled, status.rotation_interval, status.number_of_rotations), (False, 365, 0))
        self.kms.enable_key_rotation(EnableKeyRotationRequest(body=OperateKeyRequestBody(key_id=key_id)))
        self.assertSdkError(
            lambda: self.kms.enable_key_rotation(EnableKeyRotationRequest(body=OperateKeyRequestBody(key_id=key_id))), 400, "KMS.2901"
        )
        self.kms.update_key_rotation_interval(
            UpdateKeyRotationIntervalRequest(body=UpdateKeyRotationIntervalRequestBody(key_id=key_id, rotation_interval=90))
        )
        self.assertSdkError(
            lambda: self.kms.update_key_rotation_interval(
                UpdateKeyRotationIntervalRequest(body=UpdateKeyRotationIntervalRequestBody(key_id=key_id, rotation_interval=29))
            ),
            400,
            "KMS.3001",
        )
        before = self.kms.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(key_id=key_id, plain_text="under material 1")))
        rotated = self.kms.rotate_on_demand(RotateOnDemandRequest(body=RotateOnDemandRequestBody(key_id=key_id)))
        self.assertEqual(rotated.key_id, key_id)
        after = self.kms.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(key_id=key_id, plain_text="under material 2")))
        for blob, text in ((before.cipher_text, "under material 1"), (after.cipher_text, "under material 2")):
            opened = self.kms.decrypt_data(DecryptDataRequest(body=DecryptDataRequestBody(cipher_text=blob)))
            self.assertEqual(opened.plain_text, text)
        status = self.kms.show_key_rotation_status(ShowKeyRotationStatusRequest(body=OperateKeyRequestBody(key_id=key_id)))
        self.assertEqual((status.key_rotation_enabled, status.rotation_interval, status.number_of_rotations), (True, 90, 1))
        self.assertEqual(len(status.key_materials), 2)
        body = raw(status)
        self.assertIsInstance(body["key_rotation_enabled"], bool)
        self.assertIsInstance(body["rotation_interval"], int)
        self.assertIsInstance(body["number_of_rotations"], int)
        self.assertTrue(body["last_rotation_time"].isdigit())
        self.kms.disable_key_rotation(DisableKeyRotationRequest(body=OperateKeyRequestBody(key_id=key_id)))
        self.assertSdkError(
            lambda: self.kms.disable_key_rotation(DisableKeyRotationRequest(body=OperateKeyRequestBody(key_id=key_id))), 400, "KMS.0313"
        )
        self.assertSdkError(
            lambda: self.kms.show_key_rotation_status(ShowKeyRotationStatusRequest(body=OperateKeyRequestBody(key_id=str(uuid.uuid4())))),
            404,
            "KMS.0207",
        )
        self.assertSdkError(
            lambda: self.kms.rotate_on_demand(RotateOnDemandRequest(body=RotateOnDemandRequestBody(key_id="not-a-key"))), 400, "KMS.0205"
        )
        self.create_secret(name=unique("sdk-rot-default"), secret_string="makes the csms/default key")
        keys = self.kms.list_keys(ListKeysRequest(body=ListKeysRequestBody(limit="1000", key_spec="ALL"))).key_details
        default = [k.key_id for k in keys if k.key_alias == "csms/default"][0]
        self.assertSdkError(
            lambda: self.kms.enable_key_rotation(EnableKeyRotationRequest(body=OperateKeyRequestBody(key_id=default))), 400, "KMS.0211"
        )

    def test_tags(self):
        key_id = self.new_key("sdk-ktag")
        self.kms.create_kms_tag(CreateKmsTagRequest(key_id=key_id, body=CreateKmsTagRequestBody(tag=KmsTagItem(key="env", value="sdk"))))
        self.kms.batch_create_kms_tags(
            BatchCreateKmsTagsRequest(
                key_id=key_id,
                body=BatchCreateKmsTagsRequestBody(action="create", tags=[KmsTagItem(key="team", value="a"), KmsTagItem(key="tmp", value="")]),
            )
        )
        self.kms.delete_tag(DeleteTagRequest(key_id=key_id, key="tmp"))
        shown = self.kms.show_kms_tags(ShowKmsTagsRequest(key_id=key_id))
        self.assertEqual(sorted((t.key, t.value) for t in shown.tags), [("env", "sdk"), ("team", "a")])
        self.assertEqual(shown.exist_tags_num, 2)
        project = self.kms.list_kms_tags(ListKmsTagsRequest())
        self.assertIn(("env", ["sdk"]), [(t.key, t.values) for t in project.tags])
        found = self.kms.list_kms_by_tags(
            ListKmsByTagsRequest(
                resource_instances="resource_instances",
                body=ListKmsByTagsRequestBody(action="filter", limit="10", offset="0", tags=[KmsTag(key="env", values=["sdk"])]),
            )
        )
        self.assertIn(key_id, [r.resource_id for r in found.resources])
        self.assertIsInstance(raw(found)["total_count"], int)
        counted = self.kms.list_kms_by_tags(
            ListKmsByTagsRequest(resource_instances="resource_instances", body=ListKmsByTagsRequestBody(action="count", tags=[KmsTag(key="env", values=["sdk"])]))
        )
        self.assertEqual(counted.total_count, found.total_count)
        self.assertSdkError(
            lambda: self.kms.create_kms_tag(
                CreateKmsTagRequest(key_id=key_id, body=CreateKmsTagRequestBody(tag=KmsTagItem(key="bad=key", value="x")))
            ),
            400,
            "KMS.0406",
        )
        self.assertSdkError(
            lambda: self.kms.batch_create_kms_tags(
                BatchCreateKmsTagsRequest(key_id=key_id, body=BatchCreateKmsTagsRequestBody(action="replace", tags=[KmsTagItem(key="a", value="b")]))
            ),
            400,
            "KMS.0404",
        )
        self.assertSdkError(lambda: self.kms.delete_tag(DeleteTagRequest(key_id=key_id, key="absent")), 404, "KMS.0416")
        batch = lambda action, tags: self.kms.batch_create_kms_tags(
            BatchCreateKmsTagsRequest(key_id=key_id, body=BatchCreateKmsTagsRequestBody(action=action, tags=tags)))
        self.assertSdkError(lambda: batch("create", []), 400, "KMS.0401")
        self.assertSdkError(lambda: batch("create", [KmsTagItem(key="k", value="v" * 44)]), 400, "KMS.0405")
        self.assertSdkError(lambda: batch("create", [KmsTagItem(key="k%d" % i, value="") for i in range(21)]), 400, "KMS.0407")
        batch("create", [KmsTagItem(key="fill%d" % i, value="") for i in range(18)])
        self.assertSdkError(lambda: batch("create", [KmsTagItem(key="one-too-many", value="")]), 400, "KMS.0409")
        query = lambda **f: self.kms.list_kms_by_tags(ListKmsByTagsRequest(resource_instances="resource_instances", body=ListKmsByTagsRequestBody(**f)))
        self.assertSdkError(lambda: query(action="filter", tags=[KmsTag(key="env", values=["v%d" % i for i in range(11)])]), 400, "KMS.0413")
        self.assertSdkError(lambda: query(action="filter", offset="-1"), 400, "KMS.0417")
        self.assertSdkError(lambda: query(action="filter", matches=[KmsTagItem(key="resource_name", value="x" * 256)]), 400, "KMS.0402")
        self.assertSdkError(lambda: query(action="filter", matches=[KmsTagItem(key="alias", value="x")]), 400, "KMS.0403")
        self.assertSdkError(lambda: self.kms.show_kms_tags(ShowKmsTagsRequest(key_id=str(uuid.uuid4()))), 404, "KMS.0207")
        self.assertSdkError(
            lambda: self.kms.list_kms_by_tags(
                ListKmsByTagsRequest(resource_instances="resource_instances", body=ListKmsByTagsRequestBody(action="count", offset="0"))
            ),
            400,
            "KMS.0418",
        )
        kms, _ = ErrorPathsTest.unsigned(self)
        self.assertSdkError(lambda: kms.list_kms_tags(ListKmsTagsRequest()), 401, "APIGW.0301")

    def test_imported_material(self):
        """Material wrapped by pyca/cryptography (not by opendew) round-trips;
        deleted, the key's ciphertexts stop opening; the same material brings
        them back, other material is refused."""
        import time

        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        key_id = self.create_key(key_alias=unique("sdk-ext"), origin="external").key_info.key_id
        self.assertEqual(self.kms.list_key_detail(ListKeyDetailRequest(body=OperateKeyRequestBody(key_id=key_id))).key_info.key_state, "5")

        def parameters(algorithm="RSAES_OAEP_SHA_256"):
            body = GetParametersForImportRequestBody(key_id=key_id, wrapping_algorithm=algorithm)
            return self.kms.create_parameters_for_import(CreateParametersForImportRequest(body=body))

        def import_(material, algorithm="RSAES_OAEP_SHA_256", hash_=hashes.SHA256, **fields):
            params = parameters(algorithm)
            self.assertGreater(params.expiration_time, time.time() + 23 * 3600)
            public = serialization.load_der_public_key(base64.b64decode(params.public_key))
            self.assertEqual(public.key_size, 2048)
            wrapped = public.encrypt(material, padding.OAEP(mgf=padding.MGF1(algorithm=hash_()), algorithm=hash_(), label=None))
            body = ImportKeyMaterialRequestBody(key_id=key_id, import_token=params.import_token,
                                                encrypted_key_material=base64.b64encode(wrapped).decode(), **fields)
            return self.kms.import_key_material(ImportKeyMaterialRequest(body=body))

        material = os.urandom(32)
        import_(material, expiration_time=int(time.time()) + 86400)
        details = raw(self.kms.list_key_detail(ListKeyDetailRequest(body=OperateKeyRequestBody(key_id=key_id))))["key_info"]
        self.assertEqual(details["key_state"], "2")
        self.assertTrue(details["expiration_time"].isdigit() and len(details["expiration_time"]) == 13, details)
        sealed = self.kms.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(key_id=key_id, plain_text="imported"))).cipher_text
        decrypt = lambda: self.kms.decrypt_data(DecryptDataRequest(body=DecryptDataRequestBody(cipher_text=sealed))).plain_text
        self.assertEqual(decrypt(), "imported")

        self.kms.delete_imported_key_material(DeleteImportedKeyMaterialRequest(body=OperateKeyRequestBody(key_id=key_id)))
        self.assertSdkError(decrypt, 400, "KMS.0209")
        params = parameters()  # a token for this key, to try on another below
        self.assertSdkError(
            lambda: self.kms.delete_imported_key_material(DeleteImportedKeyMaterialRequest(body=OperateKeyRequestBody(key_id=key_id))),
            400,
            "KMS.2701",
        )
        self.assertSdkError(lambda: import_(os.urandom(32)), 400, "KMS.2606")
        import_(material, algorithm="RSAES_OAEP_SHA_1", hash_=hashes.SHA1)
        self.assertEqual(decrypt(), "imported")

        # The documented refusals.
        self.assertSdkError(lambda: import_(material), 400, "KMS.0310")
        self.assertSdkError(
            lambda: self.kms.enable_key_rotation(EnableKeyRotationRequest(body=OperateKeyRequestBody(key_id=key_id))), 400, "KMS.0312"
        )
        generated = self.new_key("sdk-gen")
        self.assertSdkError(
            lambda: self.kms.create_parameters_for_import(CreateParametersForImportRequest(
                body=GetParametersForImportRequestBody(key_id=generated, wrapping_algorithm="RSAES_OAEP_SHA_256"))),
            400,
            "KMS.0309",
        )
        other = self.create_key(key_alias=unique("sdk-ext2"), origin="external").key_info.key_id
        public = serialization.load_der_public_key(base64.b64decode(params.public_key))
        oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        wrap = lambda m: base64.b64encode(public.encrypt(m, oaep)).decode()
        body = lambda **f: ImportKeyMaterialRequest(body=ImportKeyMaterialRequestBody(**f))
        self.assertSdkError(
            lambda: self.kms.import_key_material(body(key_id=other, import_token=params.import_token, encrypted_key_material=wrap(material))),
            400,
            "KMS.2603",
        )
        self.assertSdkError(
            lambda: self.kms.import_key_material(body(key_id=other, import_token="A" * 400, encrypted_key_material=wrap(material))),
            400,
            "KMS.2605",
        )
        other_params = self.kms.create_parameters_for_import(CreateParametersForImportRequest(
            body=GetParametersForImportRequestBody(key_id=other, wrapping_algorithm="RSAES_OAEP_SHA_256")))
        other_public = serialization.load_der_public_key(base64.b64decode(other_params.public_key))
        short = base64.b64encode(other_public.encrypt(os.urandom(16), oaep)).decode()
        self.assertSdkError(
            lambda: self.kms.import_key_material(body(key_id=other, import_token=other_params.import_token, encrypted_key_material=short)),
            400,
            "KMS.2604",
        )
        self.assertSdkError(
            lambda: self.kms.import_key_material(body(key_id=other, import_token=other_params.import_token,
                                                      encrypted_key_material=wrap(material), expiration_time=1)),
            400,
            "KMS.2602",
        )
        # Wrapped for another wrapping key: it does not unwrap.
        self.assertSdkError(
            lambda: self.kms.import_key_material(body(key_id=other, import_token=other_params.import_token,
                                                      encrypted_key_material=wrap(material))),
            400,
            "KMS.0311",
        )

    def test_grants(self):
        key_id = self.new_key("sdk-grant")
        grantee = uuid.uuid4().hex

        def grant(**fields):
            body = CreateGrantRequestBody(key_id=key_id, grantee_principal=grantee, **fields)
            return self.kms.create_grant(CreateGrantRequest(body=body)).grant_id

        first = grant(operations=["describe-key", "encrypt-data"], name="sdk-grant")
        self.assertEqual(len(first), 64)
        listed = self.kms.list_grants(ListGrantsRequest(body=ListGrantsRequestBody(key_id=key_id, limit="100")))
        self.assertEqual([g.grant_id for g in listed.grants], [first])
        entry = raw(listed)["grants"][0]
        self.assertEqual((entry["grantee_principal_type"], entry["operations"]), ("user", ["describe-key", "encrypt-data"]))
        self.assertTrue(entry["creation_date"].isdigit())
        self.assertEqual((raw(listed)["total"], raw(listed)["truncated"], raw(listed)["next_marker"]), (1, "false", ""))
        me = entry["issuing_principal"]
        # A grant the caller may retire as its retiring principal.
        second = grant(operations=["decrypt-data"], retiring_principal=me)
        retirable = self.kms.list_retirable_grants(ListRetirableGrantsRequest(body=ListRetirableGrantsRequestBody(limit="100")))
        self.assertIn(second, [g.grant_id for g in retirable.grants])
        self.kms.cancel_self_grant(CancelSelfGrantRequest(body=RevokeGrantRequestBody(key_id=key_id, grant_id=second)))
        self.kms.cancel_grant(CancelGrantRequest(body=RevokeGrantRequestBody(key_id=key_id, grant_id=first)))
        listed = self.kms.list_grants(ListGrantsRequest(body=ListGrantsRequestBody(key_id=key_id)))
        self.assertEqual(listed.grants, [])

        self.assertSdkError(lambda: grant(operations=["create-grant"]), 400, "KMS.2401")
        other_key = self.new_key("sdk-grant2")
        foreign = self.kms.create_grant(CreateGrantRequest(body=CreateGrantRequestBody(
            key_id=other_key, grantee_principal=grantee, operations=["describe-key"]))).grant_id
        self.assertSdkError(
            lambda: self.kms.cancel_grant(CancelGrantRequest(body=RevokeGrantRequestBody(key_id=key_id, grant_id=foreign))), 400, "KMS.2502"
        )
        for _ in range(100):
            grant(operations=["describe-key"])
        self.assertSdkError(lambda: grant(operations=["describe-key"]), 400, "KMS.2404")
        self.assertSdkError(
            lambda: self.kms.create_grant(CreateGrantRequest(body=CreateGrantRequestBody(
                key_id=key_id, grantee_principal="not valid!", operations=["describe-key"]))),
            400,
            "KMS.2402",
        )
        self.assertSdkError(
            lambda: self.kms.list_grants(ListGrantsRequest(body=ListGrantsRequestBody(key_id=key_id, limit="0"))), 400, "KMS.1601"
        )
        self.assertSdkError(
            lambda: self.kms.cancel_grant(CancelGrantRequest(body=RevokeGrantRequestBody(key_id=key_id, grant_id="ab" * 32))),
            400,
            "KMS.2501",
        )
        self.assertSdkError(
            lambda: self.kms.cancel_self_grant(CancelSelfGrantRequest(body=RevokeGrantRequestBody(key_id=key_id, grant_id="nope"))),
            400,
            "KMS.2501",
        )
        self.assertSdkError(
            lambda: self.kms.list_retirable_grants(ListRetirableGrantsRequest(body=ListRetirableGrantsRequestBody(limit="many"))),
            400,
            "KMS.1601",
        )

    def test_aliases(self):
        first, second = self.new_key("sdk-al1"), self.new_key("sdk-al2")
        name = "alias/" + unique("sdk")
        created = self.kms.create_alias(CreateAliasRequest(body=CreateAliasRequestBody(key_id=first, alias=name)))
        self.assertEqual((created.alias, created.key_id), (name, first))
        self.assertTrue(created.alias_urn.endswith(":alias:" + name), created.alias_urn)
        self.assertTrue(created.create_time.endswith("Z"))
        described = self.kms.list_key_detail(ListKeyDetailRequest(body=OperateKeyRequestBody(key_id=name)))
        self.assertEqual(described.key_info.key_id, first)
        listed = self.kms.list_aliases(ListAliasesRequest(key_id=first, limit="50"))
        page = listed.body[0]
        self.assertEqual([a.alias for a in page.aliases], [name])
        self.assertEqual(page.page_info.current_count, 1)
        moved = self.kms.associate_alias(AssociateAliasRequest(body=AssociateAliasRequestBody(alias=name, target_key_id=second)))
        self.assertEqual(moved.key_id, second)
        self.assertSdkError(
            lambda: self.kms.create_alias(CreateAliasRequest(body=CreateAliasRequestBody(key_id=first, alias=name))), 400, "KMS.1104"
        )
        self.assertSdkError(
            lambda: self.kms.create_alias(CreateAliasRequest(body=CreateAliasRequestBody(key_id=first, alias="no-prefix"))), 400, "KMS.1101"
        )
        self.assertSdkError(lambda: self.kms.list_aliases(ListAliasesRequest(limit="0")), 400, "KMS.1601")
        self.assertSdkError(
            lambda: self.kms.delete_alias(DeleteAliasRequest(body=DeleteAliasRequestBody(key_id=first, aliases=[name]))), 400, "KMS.0308"
        )
        self.kms.delete_alias(DeleteAliasRequest(body=DeleteAliasRequestBody(key_id=second, aliases=[name])))
        self.assertSdkError(
            lambda: self.kms.associate_alias(AssociateAliasRequest(body=AssociateAliasRequestBody(alias=name, target_key_id=first))),
            400,
            "KMS.0308",
        )




def gmssl_sm2(point, **kwargs):
    """gmssl's CryptSM2 for the public point x || y.

    Its constructor drops a "04" prefix with `str.lstrip("04")`, which strips
    every leading '0' and '4' character, so an x coordinate whose hex starts
    with "04" (1 key in 256) came out short and verify crashed inside gmssl.
    Setting the attribute afterwards keeps the point whole."""
    from gmssl import sm2

    crypt = sm2.CryptSM2(private_key="", public_key="00" * 64, **kwargs)
    crypt.public_key = point.hex()
    return crypt


def der_to_raw(signature, size):
    """r || s of a DER ECDSA/SM2 signature, each `size` bytes."""
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s_ = decode_dss_signature(signature)
    return r.to_bytes(size, "big") + s_.to_bytes(size, "big")


def der_sm2_ciphertext(c1c3c2):
    """GM/T 0009's DER form of a raw C1 (x || y) C3 C2 ciphertext."""

    def tlv(tag, body):
        n = len(body)
        length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
        return bytes([tag]) + length + body

    def integer(b):
        b = b.lstrip(b"\x00") or b"\x00"
        return tlv(0x02, (b"\x00" + b) if b[0] & 0x80 else b)

    x, y, c3, c2 = c1c3c2[:32], c1c3c2[32:64], c1c3c2[64:96], c1c3c2[96:]
    return tlv(0x30, integer(x) + integer(y) + tlv(0x04, c3) + tlv(0x04, c2))


class AsymmetricAndMacTest(Base):
    """Every key spec, and sign/verify, get-publickey, the MAC operations,
    asymmetric encryption and re-encrypt (kms-api.md §1.8, §3.5-3.7), each
    result checked by an implementation that is not opendew's: pyca
    cryptography (RSA, ECDSA, Ed25519), pycryptodome (Ed25519ph) and gmssl
    (SM2)."""

    SIGNING = {
        "RSA_2048": ["RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
                     "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"],
        "RSA_3072": ["RSASSA_PSS_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256"],
        "EC_P256": ["ECDSA_SHA_256", "ECDSA_SHA_512"],
        "EC_P384": ["ECDSA_SHA_384", "ECDSA_SHA_512"],
        "SECP256K1": ["ECDSA_SHA_256"],
        "ED25519": ["ED25519_SHA_512", "ED25519_PH_SHA_512"],
        "SM2": ["SM2DSA_SM3"],
    }

    def key(self, spec, usage=None):
        fields = {"key_alias": unique("sdk-" + spec.lower()), "key_spec": spec}
        if usage:
            fields["key_usage"] = usage
        return self.create_key(**fields).key_info.key_id

    def sign(self, key_id, algorithm, message, message_type="RAW"):
        body = SignRequestBody(key_id=key_id, signing_algorithm=algorithm, message_type=message_type,
                               message=base64.b64encode(message).decode())
        return self.kms.sign(SignRequest(body=body))

    def verify(self, key_id, algorithm, message, signature, message_type="RAW"):
        body = VerifyRequestBody(key_id=key_id, signing_algorithm=algorithm, message_type=message_type,
                                 message=base64.b64encode(message).decode(), signature=signature)
        return self.kms.validate_signature(ValidateSignatureRequest(body=body))

    def public_key(self, key_id):
        return self.kms.show_public_key(ShowPublicKeyRequest(body=OperateKeyRequestBody(key_id=key_id)))

    def independent_verify(self, spec, algorithm, pem, message, signature):
        """Raises unless `signature` is valid for `message` under `pem`."""
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, padding

        hash_ = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}.get(algorithm[-3:])
        if spec == "SM2":

            der = base64.b64decode("".join(pem.strip().splitlines()[1:-1]))
            point = der[-64:]  # the uncompressed point's x || y ends the SPKI
            crypt = gmssl_sm2(point)
            self.assertTrue(crypt.verify_with_sm3(der_to_raw(signature, 32).hex(), message), "gmssl SM2")
            return
        if algorithm == "ED25519_PH_SHA_512":
            from Crypto.Hash import SHA512
            from Crypto.PublicKey import ECC
            from Crypto.Signature import eddsa

            eddsa.new(ECC.import_key(pem), "rfc8032").verify(SHA512.new(message), signature)
            return
        public = serialization.load_pem_public_key(pem.encode())
        if algorithm == "ED25519_SHA_512":
            public.verify(signature, message)
        elif algorithm.startswith("RSASSA_PSS"):
            public.verify(signature, message, padding.PSS(mgf=padding.MGF1(hash_()), salt_length=padding.PSS.DIGEST_LENGTH), hash_())
        elif algorithm.startswith("RSASSA_PKCS1"):
            public.verify(signature, message, padding.PKCS1v15(), hash_())
        else:
            public.verify(signature, message, ec.ECDSA(hash_()))

    def test_every_spec_is_created_described_and_listed(self):
        specs = ["AES_256", "SM4", "RSA_2048", "RSA_3072", "RSA_4096", "EC_P256", "EC_P384", "SECP256K1", "SM2",
                 "ED25519", "HMAC_256", "HMAC_384", "HMAC_512", "HMAC_SM3"]
        usages = {"AES_256": "ENCRYPT_DECRYPT", "SM4": "ENCRYPT_DECRYPT", "HMAC_256": "GENERATE_VERIFY_MAC",
                  "HMAC_384": "GENERATE_VERIFY_MAC", "HMAC_512": "GENERATE_VERIFY_MAC", "HMAC_SM3": "GENERATE_VERIFY_MAC"}
        ids = {spec: self.key(spec) for spec in specs}
        for spec, key_id in ids.items():
            info = raw(self.kms.list_key_detail(ListKeyDetailRequest(body=OperateKeyRequestBody(key_id=key_id))))["key_info"]
            self.assertEqual((info["key_spec"], info["key_usage"], info["key_state"]), (spec, usages.get(spec, "SIGN_VERIFY"), "2"))
        listed = {}
        marker = None
        while True:
            page = self.kms.list_keys(ListKeysRequest(body=ListKeysRequestBody(limit="1000", key_spec="ALL", marker=marker)))
            listed.update({k.key_id: k.key_spec for k in page.key_details})
            if page.truncated != "true":
                break
            marker = page.next_marker
        for spec, key_id in ids.items():
            self.assertEqual(listed.get(key_id), spec)
        plain = self.kms.list_keys(ListKeysRequest(body=ListKeysRequestBody(limit="1000")))
        self.assertTrue(all(k.key_spec == "AES_256" for k in plain.key_details))
        self.assertNotIn(ids["EC_P256"], [k.key_id for k in plain.key_details])
        # Pairings refused as documented.
        self.assertSdkError(lambda: self.key("EC_P256", "ENCRYPT_DECRYPT"), 400, "KMS.1114")
        self.assertSdkError(lambda: self.key("AES_256", "SIGN_VERIFY"), 400, "KMS.1115")
        self.assertSdkError(lambda: self.key("RSA_9999"), 400, "KMS.1110")

    def test_signatures_verify_in_independent_implementations(self):
        message = b"release-1.2.3.tar.gz contents"
        for spec, algorithms in self.SIGNING.items():
            key_id = self.key(spec)
            pem = self.public_key(key_id).public_key
            self.assertTrue(pem.startswith("-----BEGIN PUBLIC KEY-----\r\n"), pem)
            for algorithm in algorithms:
                signed = self.sign(key_id, algorithm, message)
                self.assertEqual(signed.key_id, key_id)
                signature = base64.b64decode(signed.signature)
                self.independent_verify(spec, algorithm, pem, message, signature)
                self.assertEqual(self.verify(key_id, algorithm, message, signed.signature).signature_valid, "true")
                self.assertEqual(self.verify(key_id, algorithm, message + b"!", signed.signature).signature_valid, "false")
                digest_name = {"256": "sha256", "384": "sha384", "512": "sha512"}.get(algorithm[-3:])
                if spec != "SM2" and algorithm != "ED25519_SHA_512":
                    digest = hashlib.new(digest_name, message).digest()
                    by_digest = self.sign(key_id, algorithm, digest, message_type="DIGEST")
                    self.independent_verify(spec, algorithm, pem, message, base64.b64decode(by_digest.signature))
                    self.assertEqual(self.verify(key_id, algorithm, digest, by_digest.signature, "DIGEST").signature_valid, "true")
                    self.assertSdkError(lambda: self.sign(key_id, algorithm, digest[:-1], "DIGEST"), 400, "KMS.0329")
                    self.assertSdkError(
                        lambda: self.verify(key_id, algorithm, digest[:-1], by_digest.signature, "DIGEST"), 400, "KMS.0329")
            # A signature of another key of the same spec is simply false.
            other = self.key(spec)
            theirs = self.sign(other, algorithms[0], message).signature
            self.assertEqual(self.verify(key_id, algorithms[0], message, theirs).signature_valid, "false")
            resp = raw(self.verify(key_id, algorithms[0], message, theirs))
            self.assertEqual(resp["signature_valid"], "false")
            self.assertSdkError(lambda: self.sign(key_id, "HMAC_SHA_256", message), 400, "KMS.0332")
        # SM2 with a digest: e = SM3(Z_A || M), checked by gmssl the same way.

        sm2_key = self.key("SM2")
        pem = self.public_key(sm2_key).public_key
        point = base64.b64decode("".join(pem.strip().splitlines()[1:-1]))[-64:]
        crypt = gmssl_sm2(point)
        e = bytes.fromhex(crypt._sm3_z(message))
        signed = self.sign(sm2_key, "SM2DSA_SM3", e, message_type="DIGEST")
        self.assertTrue(crypt.verify_with_sm3(der_to_raw(base64.b64decode(signed.signature), 32).hex(), message))
        # The documented refusals.
        ec_key = self.key("EC_P256")
        self.assertSdkError(lambda: self.sign(ec_key, "ECDSA_SHA_384", message), 400, "KMS.0332")
        self.assertSdkError(lambda: self.sign(ec_key, "ECDSA_SHA_256", b"x" * 4096), 400, "KMS.0308")
        ed = self.key("ED25519")
        self.assertSdkError(lambda: self.sign(ed, "ED25519_SHA_512", hashlib.sha512(message).digest(), "DIGEST"), 400, "KMS.0308")
        aes = self.key("AES_256")
        self.assertSdkError(lambda: self.sign(aes, "ECDSA_SHA_256", message), 400, "KMS.0331")
        self.assertSdkError(lambda: self.public_key(aes), 400, "KMS.0331")
        rsa_enc = self.key("RSA_2048", "ENCRYPT_DECRYPT")
        self.assertSdkError(lambda: self.sign(rsa_enc, "RSASSA_PSS_SHA_256", message), 400, "KMS.0334")
        self.assertTrue(self.public_key(rsa_enc).public_key.startswith("-----BEGIN PUBLIC KEY-----"))
        self.kms.disable_key(DisableKeyRequest(body=OperateKeyRequestBody(key_id=ec_key)))
        self.assertSdkError(lambda: self.sign(ec_key, "ECDSA_SHA_256", message), 400, "KMS.0209")
        self.assertSdkError(lambda: self.verify(ec_key, "ECDSA_SHA_256", message, "MEUCIQ=="), 400, "KMS.0209")

    def test_asymmetric_encryption_with_independent_ciphertexts(self):
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        def decrypt(key_id, ciphertext, algorithm):
            body = DecryptDataRequestBody(key_id=key_id, cipher_text=base64.b64encode(ciphertext).decode(),
                                          encryption_algorithm=algorithm)
            return self.kms.decrypt_data(DecryptDataRequest(body=body))

        for spec, limit in [("RSA_2048", 190), ("RSA_3072", 318)]:
            key_id = self.key(spec, "ENCRYPT_DECRYPT")
            public = serialization.load_pem_public_key(self.public_key(key_id).public_key.encode())
            for algorithm, hash_ in [("RSAES_OAEP_SHA_256", hashes.SHA256), ("RSAES_OAEP_SHA_1", hashes.SHA1)]:
                oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hash_()), algorithm=hash_(), label=None)
                opened = decrypt(key_id, public.encrypt(b"made by pyca", oaep), algorithm)
                self.assertEqual((opened.key_id, opened.plain_text), (key_id, "made by pyca"))
                self.assertEqual(raw(opened)["plain_text_base64"], base64.b64encode(b"made by pyca").decode())
                bad = bytearray(public.encrypt(b"made by pyca", oaep))
                bad[5] ^= 1
                self.assertSdkError(lambda: decrypt(key_id, bytes(bad), algorithm), 400, "KMS.0311")
            ours = self.kms.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(
                key_id=key_id, plain_text="x" * limit, encryption_algorithm="RSAES_OAEP_SHA_256")))
            self.assertEqual(decrypt(key_id, base64.b64decode(ours.cipher_text), "RSAES_OAEP_SHA_256").plain_text, "x" * limit)
            self.assertSdkError(lambda: self.kms.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(
                key_id=key_id, plain_text="x" * (limit + 1), encryption_algorithm="RSAES_OAEP_SHA_256"))), 400, "KMS.2108")
            self.assertSdkError(lambda: self.kms.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(
                key_id=key_id, plain_text="x", encryption_algorithm="SM2_ENCRYPT"))), 400, "KMS.2106")
            # Another project's, or another key's, ciphertext does not open here.
            other = self.key(spec, "ENCRYPT_DECRYPT")
            self.assertSdkError(lambda: decrypt(other, public.encrypt(b"x", padding.OAEP(
                mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)), "RSAES_OAEP_SHA_256"), 400, "KMS.0311")
        # SM2: a ciphertext made by gmssl (C1C3C2, DER-framed) decrypts.

        sm2_key = self.key("SM2", "ENCRYPT_DECRYPT")
        point = base64.b64decode("".join(self.public_key(sm2_key).public_key.strip().splitlines()[1:-1]))[-64:]
        crypt = gmssl_sm2(point, mode=1)
        ciphertext = der_sm2_ciphertext(crypt.encrypt(b"made by gmssl"))
        self.assertEqual(decrypt(sm2_key, ciphertext, "SM2_ENCRYPT").plain_text, "made by gmssl")
        self.assertSdkError(lambda: decrypt(sm2_key, ciphertext[:-1] + bytes([ciphertext[-1] ^ 1]), "SM2_ENCRYPT"), 400, "KMS.0311")
        ec_key = self.key("EC_P384")
        self.assertSdkError(lambda: self.kms.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(
            key_id=ec_key, plain_text="x"))), 400, "KMS.1114")

    def test_mac_operations(self):
        key_id = self.key("HMAC_256")
        message = base64.b64encode(b"hello kms").decode()
        made = self.kms.generate_mac(GenerateMacRequest(body=GenerateMacRequestBody(
            key_id=key_id, mac_algorithm="HMAC_SHA_256", message=message)))
        self.assertEqual((made.key_id, made.mac_algorithm, len(made.mac)), (key_id, "HMAC_SHA_256", 64))
        verify = lambda mac, algorithm="HMAC_SHA_256": self.kms.verify_mac(VerifyMacRequest(body=VerifyMacRequestBody(
            key_id=key_id, mac_algorithm=algorithm, message=message, mac=mac)))
        self.assertIs(raw(verify(made.mac))["mac_valid"], True)
        self.assertIs(verify(made.mac.upper()).mac_valid, True)
        self.assertIs(raw(verify("00" * 32))["mac_valid"], False)
        self.assertSdkError(lambda: verify(made.mac, "HMAC_SHA_512"), 400, "KMS.0308")
        self.assertSdkError(lambda: self.kms.generate_mac(GenerateMacRequest(body=GenerateMacRequestBody(
            key_id=key_id, mac_algorithm="HMAC_SM3", message=message))), 400, "KMS.0308")
        sm3_key = self.key("HMAC_SM3")
        sm3_mac = self.kms.generate_mac(GenerateMacRequest(body=GenerateMacRequestBody(
            key_id=sm3_key, mac_algorithm="HMAC_SM3", message=message)))
        self.assertEqual(len(sm3_mac.mac), 64)

    def test_re_encrypt(self):
        source, destination = self.key("AES_256"), self.key("SM4")
        dek = self.kms.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=source, datakey_length="256")))
        moved = self.kms.re_encrypt(ReEncryptRequest(body=ReEncryptRequestBody(
            cipher_text=dek.cipher_text, destination_key_id=destination, datakey_cipher_length="32")))
        self.assertEqual((moved.key_id, moved.source_key_id), (destination, source))
        self.assertEqual((moved.source_encryption_algorithm, moved.destination_encryption_algorithm), ("SYMMETRIC_DEFAULT", "SYMMETRIC_DEFAULT"))
        opened = self.kms.decrypt_datakey(DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(
            key_id=destination, cipher_text=moved.cipher_text, datakey_cipher_length="32")))
        self.assertEqual(opened.data_key, dek.plain_text)
        # A data blob into an RSA key's OAEP ciphertext, opened by pyca.
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        rsa = self.key("RSA_2048", "ENCRYPT_DECRYPT")
        sealed = self.kms.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(
            key_id=source, plain_text="moving", additional_authenticated_data="ctx")))
        moved = self.kms.re_encrypt(ReEncryptRequest(body=ReEncryptRequestBody(
            cipher_text=sealed.cipher_text, source_additional_authenticated_data="ctx", destination_key_id=rsa,
            destination_encryption_algorithm="RSAES_OAEP_SHA_256")))
        self.assertEqual(moved.destination_encryption_algorithm, "RSAES_OAEP_SHA_256")
        back = self.kms.re_encrypt(ReEncryptRequest(body=ReEncryptRequestBody(
            cipher_text=moved.cipher_text, source_key_id=rsa, source_encryption_algorithm="RSAES_OAEP_SHA_256",
            destination_key_id=source)))
        plain = self.kms.decrypt_data(DecryptDataRequest(body=DecryptDataRequestBody(cipher_text=back.cipher_text)))
        self.assertEqual(plain.plain_text, "moving")
        self.assertSdkError(lambda: self.kms.re_encrypt(ReEncryptRequest(body=ReEncryptRequestBody(
            cipher_text=sealed.cipher_text, destination_key_id=destination))), 400, "KMS.2201")
        self.kms.disable_key(DisableKeyRequest(body=OperateKeyRequestBody(key_id=destination)))
        self.assertSdkError(lambda: self.kms.re_encrypt(ReEncryptRequest(body=ReEncryptRequestBody(
            cipher_text=dek.cipher_text, destination_key_id=destination))), 400, "KMS.0209")


class CsmsTier2Test(Base):
    """Events, notification records, rotation, tasks and batch import
    through the official SDK: each operation's success, its raw JSON
    types, and its error in the documented shape."""

    def assertTypes(self, obj, types):
        KmsOperationsTest.assertTypes(self, obj, types)

    EVENT = {"name": str, "event_id": str, "event_types": list, "state": str, "create_time": int, "update_time": int,
             "notification": dict}

    def wait_for_records(self, secret, count):
        for _ in range(100):
            records = self.csms.list_notification_records(ListNotificationRecordsRequest())
            mine = [r for r in records.records if r.secret_name == secret]
            if len(mine) >= count and all(r.notification_status != "PENDING" for r in mine):
                return records, mine
            time.sleep(0.2)
        self.fail("no records of %s" % secret)

    def test_events_and_records(self):
        name = unique("sdk-ev")
        notification = Notification(target_type="SMN", target_id="urn:smn:local-1:%s:ops" % self.project_id, target_name="ops")
        body = CreateSecretEventRequestBody(name=name, event_types=["SECRET_VERSION_CREATED", "SECRET_DELETED"],
                                            state="ENABLED", notification=notification)
        created = self.csms.create_secret_event(CreateSecretEventRequest(body=body))
        self.assertEqual(created.event.name, name)
        self.assertTypes(raw(created)["event"], self.EVENT)
        self.assertSdkError(lambda: self.csms.create_secret_event(CreateSecretEventRequest(body=body)), 400, "CSMS.0002")
        shown = self.csms.show_secret_event(ShowSecretEventRequest(event_name=name))
        self.assertEqual(shown.event.notification.target_name, "ops")
        self.assertSdkError(lambda: self.csms.show_secret_event(ShowSecretEventRequest(event_name="sdk-no-such-event")), 400, "CSMS.0005")
        listed = self.csms.list_secret_events(ListSecretEventsRequest(limit="1000"))
        self.assertIn(name, [e.name for e in listed.events])
        self.assertIsInstance(raw(listed)["page_info"]["current_count"], int)
        self.assertSdkError(lambda: self.csms.list_secret_events(ListSecretEventsRequest(limit="0")), 400, "CSMS.0002")
        updated = self.csms.update_secret_event(UpdateSecretEventRequest(
            event_name=name, body=UpdateSecretEventRequestBody(event_types=["SECRET_VERSION_CREATED"])))
        self.assertEqual(updated.event.event_types, ["SECRET_VERSION_CREATED"])
        self.assertSdkError(lambda: self.csms.update_secret_event(UpdateSecretEventRequest(
            event_name="sdk-no-such-event", body=UpdateSecretEventRequestBody(state="DISABLED"))), 400, "CSMS.0005")

        secret = unique("sdk-ev-secret")
        self.create_secret(name=secret, secret_string="fires", event_subscriptions=[name])
        records, mine = self.wait_for_records(secret, 1)
        self.assertEqual(mine[0].trigger_event_type, "SECRET_VERSION_CREATED")
        self.assertEqual(mine[0].event_name, name)
        self.assertEqual(mine[0].notification_status, "SUCCESS")
        self.assertIn('"eventType":"SECRET_VERSION_CREATED"', mine[0].notification_content)
        self.assertTypes(raw(records)["records"][0], {"event_name": str, "trigger_event_type": str, "create_time": int,
                                                      "secret_name": str, "notification_content": str})
        self.assertSdkError(lambda: self.elsewhere().list_notification_records(ListNotificationRecordsRequest()), 403, "CSMS.0302")

        self.assertSdkError(lambda: self.csms.delete_secret_event(DeleteSecretEventRequest(event_name=name)), 400, "CSMS.0002")
        self.csms.delete_secret(DeleteSecretRequest(secret_name=secret))
        self.csms.delete_secret_event(DeleteSecretEventRequest(event_name=name))
        self.assertSdkError(lambda: self.csms.delete_secret_event(DeleteSecretEventRequest(event_name=name)), 400, "CSMS.0005")

    def test_rotation_and_tasks(self):
        role, user = os.environ.get("OPENDEW_ROTATION_PG_ROLE"), os.environ.get("OPENDEW_ROTATION_MARIA_USER")
        if not role or not user:
            self.skipTest("no database instances registered (OPENDEW_TEST_POSTGRES_URL and OPENDEW_TEST_MYSQL_URL)")
        self.csms.create_agency(CreateAgencyRequest(body=CreateAgencyRequestBody(secret_type="RDS-FG")))
        # SingleUser on PostgreSQL: the server holds the new password (its
        # SCRAM verifier), not the old one.
        name = unique("sdk-rds")
        self.create_secret(name=name, secret_string=json.dumps({"username": role, "password": "old-sdk-password"}),
                           secret_type="RDS-FG",
                           rotation_config=json.dumps({"InstanceId": "sdk-pg", "SecretSubType": "SingleUser"}))
        rotated = self.csms.rotate_secret(RotateSecretRequest(secret_name=name))
        self.assertEqual(rotated.version_id, "v2")
        self.assertEqual(rotated.secret_name, name)
        self.assertTrue(rotated.rotation_task_id)
        value = json.loads(self.read(name).secret_string)
        self.assertEqual(value["username"], role)
        self.assertNotEqual(value["password"], "old-sdk-password")
        self.assertTrue(postgres_holds(role, value["password"]), "PostgreSQL holds the new password")
        self.assertFalse(postgres_holds(role, "old-sdk-password"), "and not the old one")
        # MultiUser on MariaDB: the first rotation makes <user>_clone, the
        # next resets the first account; what was read before keeps working.
        multi = unique("sdk-multi")
        self.create_secret(name=multi, secret_string=json.dumps({"username": user, "password": "old-sdk-password"}),
                           secret_type="RDS-FG",
                           rotation_config=json.dumps({"InstanceId": "sdk-maria", "SecretSubType": "MultiUser"}))
        self.assertEqual(self.csms.rotate_secret(RotateSecretRequest(secret_name=multi)).version_id, "v2")
        clone = json.loads(self.read(multi).secret_string)
        self.assertEqual(clone["username"], user + "_clone")
        self.assertTrue(mariadb_login(clone["username"], clone["password"]))
        self.assertTrue(mariadb_login(user, "old-sdk-password"), "the previous credentials still work")
        time.sleep(1.1)  # a new signature: the same request within a second is a replay
        self.assertEqual(self.csms.rotate_secret(RotateSecretRequest(secret_name=multi)).version_id, "v3")
        current = json.loads(self.read(multi).secret_string)
        self.assertEqual(current["username"], user)
        self.assertTrue(mariadb_login(user, current["password"]))
        self.assertFalse(mariadb_login(user, "old-sdk-password"))
        self.assertTrue(mariadb_login(clone["username"], clone["password"]), "SYSPREVIOUS still works")
        common = unique("sdk-common")
        self.create_secret(name=common, secret_string="c")
        self.assertSdkError(lambda: self.csms.rotate_secret(RotateSecretRequest(secret_name=common)), 400, "CSMS.0002")

        tasks = self.csms.list_secret_task(ListSecretTaskRequest(secret_name=name))
        self.assertEqual(tasks.total, 1)
        self.assertEqual(tasks.tasks[0].task_id, rotated.rotation_task_id)
        self.assertEqual(tasks.tasks[0].task_status, "SUCCESS")
        self.assertEqual(tasks.next_marker, rotated.rotation_task_id)
        self.assertTypes(raw(tasks), {"total": int, "tasks": list, "next_marker": str})
        self.assertTypes(raw(tasks)["tasks"][0], {"task_id": str, "task_time": int, "attempt_nums": int, "operate_type": str})
        one = self.csms.list_secret_task(ListSecretTaskRequest(task_id=rotated.rotation_task_id))
        self.assertEqual([t.secret_name for t in one.tasks], [name])
        self.assertSdkError(lambda: self.csms.list_secret_task(
            ListSecretTaskRequest(task_id=rotated.rotation_task_id, secret_name=name)), 400, "CSMS.0002")

    def test_batch_import(self):
        prefix = unique("sdk-batch")
        bodies = [CreateSecretRequestBody(name="%s-%d" % (prefix, i), secret_string="b%d" % i) for i in range(5)]
        bodies.append(CreateSecretRequestBody(name="%s-0" % prefix, secret_string="duplicate"))
        result = self.csms.batch_import_secrets(BatchImportSecretsRequest(body=ImportSecretsRequest(secrets=bodies)))
        self.assertEqual((result.total, result.success, result.failed), (6, 5, 1))
        self.assertEqual([e.name for e in result.error_list], ["%s-0" % prefix])
        self.assertTypes(raw(result), {"total": int, "success": int, "failed": int, "error_list": list})
        self.assertEqual(self.read("%s-3" % prefix).secret_string, "b3")
        self.assertSdkError(lambda: self.csms.batch_import_secrets(BatchImportSecretsRequest(body=ImportSecretsRequest(secrets=[]))),
                            400, "CSMS.0002")

    def test_a_secret_named_batch_import(self):
        """`batch-import` is a path of its own (POST) and a valid secret
        name: show, update and delete reach the secret."""
        def missing(call):
            with self.assertRaises(ClientRequestException) as caught:
                call()
            self.assertEqual(caught.exception.status_code, 400, str(caught.exception))

        missing(lambda: self.csms.show_secret(ShowSecretRequest(secret_name="batch-import")))
        self.create_secret(name="batch-import", secret_string="named batch-import")
        self.assertEqual(self.csms.show_secret(ShowSecretRequest(secret_name="batch-import")).secret.name, "batch-import")
        self.csms.update_secret(UpdateSecretRequest(secret_name="batch-import", body=UpdateSecretRequestBody(description="d")))
        self.csms.delete_secret(DeleteSecretRequest(secret_name="batch-import"))
        missing(lambda: self.csms.update_secret(UpdateSecretRequest(secret_name="batch-import", body=UpdateSecretRequestBody(description="d"))))
        missing(lambda: self.csms.delete_secret(DeleteSecretRequest(secret_name="batch-import")))


class CsmsSharingAndAccountTest(Base):
    """Grants (enforced for a user of another account), the secret checker,
    agencies, users and function templates through the official SDK."""

    def assertTypes(self, obj, types):
        KmsOperationsTest.assertTypes(self, obj, types)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        endpoint = os.environ["OPENDEW_ENDPOINT"]
        cls.grantee_id = os.environ["OPENDEW_GRANTEE_USER_ID"]
        credentials = BasicCredentials(os.environ["OPENDEW_GRANTEE_AK"], os.environ["OPENDEW_GRANTEE_SK"],
                                       os.environ["OPENDEW_GRANTEE_PROJECT_ID"])
        cls.grantee = CsmsClient.new_builder().with_credentials(credentials).with_endpoint(endpoint).build()

    def test_grants(self):
        name = unique("sdk-shared")
        secret_id = self.create_secret(name=name, secret_string="shared through a grant").secret.id
        body = GrantSecretReqBody(resource_id=secret_id, type="SECRET", grantee_type="0", grantee_target_id=self.grantee_id)
        created = self.csms.create_grants(CreateGrantsRequest(body=body))
        self.assertEqual(created.data.resource_id, secret_id)
        self.assertEqual(created.data.grantee_user, self.grantee_id)
        self.assertTypes(raw(created)["data"], {"uuid": str, "resourceId": str, "granteeUser": str, "createTime": int, "state": int})
        self.assertEqual(self.grantee.show_secret_version(ShowSecretVersionRequest(secret_name=secret_id, version_id="latest"))
                         .version.secret_string, "shared through a grant")
        listed = self.csms.list_grants(CsmsListGrantsRequest(resource_id=secret_id))
        self.assertEqual(listed.data.name, name)
        self.assertEqual([u.user_id for u in listed.data.grantee_user], [self.grantee_id])
        self.assertSdkError(lambda: self.csms.list_grants(CsmsListGrantsRequest(resource_id=str(uuid.uuid4()))), 400, "CSMS.0005")
        dated = GrantSecretReqBody(resource_id=secret_id, type="SECRET", grantee_type="0", grantee_target_id=self.grantee_id,
                                   validity_time=datetime.date(2999, 12, 31))
        updated = self.csms.update_grant(UpdateGrantRequest(resource_id=secret_id, body=dated))
        self.assertIsInstance(raw(updated)["data"]["validityTime"], int)
        self.assertSdkError(lambda: self.csms.update_grant(UpdateGrantRequest(resource_id=str(uuid.uuid4()), body=dated)), 400, "CSMS.0002")
        self.assertSdkError(lambda: self.csms.create_grants(CreateGrantsRequest(body=GrantSecretReqBody(
            resource_id=secret_id, type="GROUP", grantee_type="0", grantee_target_id=self.grantee_id))), 400, "CSMS.0002")
        self.csms.delete_grant(DeleteGrantRequest(resource_id=secret_id, grantee_user=self.grantee_id))
        self.assertSdkError(lambda: self.grantee.show_secret_version(
            ShowSecretVersionRequest(secret_name=secret_id, version_id="latest")), 400, "CSMS.0106")
        self.assertSdkError(lambda: self.csms.delete_grant(DeleteGrantRequest(resource_id=secret_id, grantee_user=self.grantee_id)),
                            400, "CSMS.0005")

    def test_checker(self):
        self.csms.update_secrets_config(UpdateSecretsConfigRequest(body=UpdateSecretsConfigRequestBody(checking_secret_strength=True)))
        self.assertTrue(self.csms.show_secrets_config(ShowSecretsConfigRequest()).checking_secret_strength)
        # The switch's effect: weak new values are refused while it is on.
        self.assertSdkError(lambda: self.create_secret(name=unique("sdk-weak"), secret_string="password1"), 400, "CSMS.0002")
        self.create_secret(name=unique("sdk-strong"), secret_string="vK7#qL9!zR2@wX5$-tN4&")
        self.csms.update_secrets_config(UpdateSecretsConfigRequest(body=UpdateSecretsConfigRequestBody(checking_secret_strength=False)))
        self.assertFalse(self.csms.show_secrets_config(ShowSecretsConfigRequest()).checking_secret_strength)
        self.assertSdkError(lambda: self.csms.update_secrets_config(UpdateSecretsConfigRequest(body=UpdateSecretsConfigRequestBody())),
                            400, "CSMS.0002")
        checked = self.csms.check_secrets(CheckSecretsRequest(body=CheckSecretsRequestBody(type="PASSWORD", data={"secret_string": "123456"})))
        self.assertEqual(checked.type, "PASSWORD")
        self.assertEqual(checked.data["strength"], "WEAK")
        self.assertSdkError(lambda: self.csms.check_secrets(CheckSecretsRequest(body=CheckSecretsRequestBody(type="X", data={}))),
                            400, "CSMS.0002")
        self.assertSdkError(lambda: self.elsewhere().show_secrets_config(ShowSecretsConfigRequest()), 403, "CSMS.0302")

    def test_agencies_and_templates(self):
        made = self.csms.create_agency(CreateAgencyRequest(body=CreateAgencyRequestBody(secret_type="GaussDB-FG")))
        self.assertEqual(len(made.agencies), 2)
        self.assertTrue(all(a.agency_id for a in made.agencies))
        self.assertEqual(self.csms.show_agency(ShowAgencyRequest(secret_type="GaussDB-FG")).agency_granted, "true")
        self.assertSdkError(lambda: self.csms.create_agency(CreateAgencyRequest(body=CreateAgencyRequestBody(secret_type="COMMON"))),
                            400, "CSMS.0002")
        self.assertSdkError(lambda: self.csms.show_agency(ShowAgencyRequest(secret_type="COMMON")), 400, "CSMS.0002")
        template = self.csms.show_secret_function_templates(
            ShowSecretFunctionTemplatesRequest(secret_type="RDS-FG", secret_sub_type="SingleUser", engine="postgresql"))
        self.assertIn("postgresql", template.function_templates)
        self.assertSdkError(lambda: self.csms.show_secret_function_templates(
            ShowSecretFunctionTemplatesRequest(secret_type="RDS-FG", secret_sub_type="SingleUser")), 400, "CSMS.0002")

    def test_users(self):
        users = self.csms.list_users(ListUsersRequest(offset=0, limit=10))
        me = [u for u in users.users if u.user_name == os.environ["OPENDEW_USER"]]
        self.assertEqual(len(me), 1)
        self.assertIsInstance(raw(users)["total"], int)
        self.assertSdkError(lambda: self.csms.list_users(ListUsersRequest(offset=0, limit=1000)), 400, "CSMS.0002")
        detail = self.csms.show_user_detail(ShowUserDetailRequest(user_id=me[0].user_id))
        self.assertEqual(detail.user_name, os.environ["OPENDEW_USER"])
        self.assertIs(raw(detail)["disabled"], False)
        self.assertSdkError(lambda: self.csms.show_user_detail(ShowUserDetailRequest(user_id=self.grantee_id)), 400, "CSMS.0005")
        # The grantee changes its own password.
        old = os.environ["OPENDEW_GRANTEE_PASSWORD"]
        self.assertSdkError(lambda: self.grantee.update_user_password(UpdateUserPasswordRequest(
            body=ChangeUsersPassword(old_password="not the password", password="a new password 1"))), 400, "CSMS.0002")
        changed = self.grantee.update_user_password(UpdateUserPasswordRequest(
            body=ChangeUsersPassword(old_password=old, password="a new password 1")))
        self.assertEqual(changed.user_id, self.grantee_id)


if __name__ == "__main__":
    unittest.main(verbosity=2)
