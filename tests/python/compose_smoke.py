"""The official Python SDK against the docker-compose stack (crates/opendew/tests/compose.rs).

  compose_smoke.py smoke            create-key, encrypt/decrypt, create-secret, read it back
  compose_smoke.py write LOG STOP   create secrets (about 4 a second) until the file STOP exists;
                                    each one the gateway acknowledged is appended to LOG at once
  compose_smoke.py verify LOG       every acknowledged secret reads back with its value

Environment: OPENDEW_ENDPOINT (https://127.0.0.1:PORT), OPENDEW_CA_FILE, OPENDEW_AK,
OPENDEW_SK, OPENDEW_PROJECT_ID.
"""

import base64
import json
import os
import sys
import time
import uuid

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import SdkException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcsms.v1 import CreateSecretRequest, CreateSecretRequestBody, CsmsClient, ShowSecretVersionRequest
from huaweicloudsdkkms.v2 import (
    CreateKeyRequest,
    CreateKeyRequestBody,
    DecryptDataRequest,
    DecryptDataRequestBody,
    EncryptDataRequest,
    EncryptDataRequestBody,
    KmsClient,
)


def clients(retries=3):
    config = HttpConfig.get_default_config()
    config.ssl_ca_cert = os.environ["OPENDEW_CA_FILE"]
    config.retry_times = retries
    config.timeout = (5, 10)
    credentials = BasicCredentials(os.environ["OPENDEW_AK"], os.environ["OPENDEW_SK"], os.environ["OPENDEW_PROJECT_ID"])
    endpoint = os.environ["OPENDEW_ENDPOINT"]
    build = lambda cls: cls.new_builder().with_credentials(credentials).with_endpoint(endpoint).with_http_config(config).build()
    return build(KmsClient), build(CsmsClient)


def smoke():
    kms, csms = clients()
    key = kms.create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias="compose-%s" % uuid.uuid4().hex[:8]))).key_info
    plain = base64.b64encode(b"compose smoke").decode()
    sealed = kms.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(key_id=key.key_id, plain_text=plain)))
    opened = kms.decrypt_data(DecryptDataRequest(body=DecryptDataRequestBody(cipher_text=sealed.cipher_text)))
    assert opened.plain_text == plain, opened
    name = "compose-%s" % uuid.uuid4().hex[:10]
    csms.create_secret(CreateSecretRequest(body=CreateSecretRequestBody(name=name, secret_string="from compose")))
    version = csms.show_secret_version(ShowSecretVersionRequest(secret_name=name, version_id="latest")).version
    assert version.secret_string == "from compose", version
    print("smoke ok: key %s, secret %s" % (key.key_id, name))


def write(log_path, stop_path):
    # No SDK retries: a write is acknowledged by exactly one 200 answer, and
    # a failure (the stack restarting) is simply followed by a new write.
    _, csms = clients(retries=0)
    acked = failed = 0
    with open(log_path, "a") as log:
        while not os.path.exists(stop_path):
            name = "ack-%s" % uuid.uuid4().hex[:12]
            value = uuid.uuid4().hex
            try:
                csms.create_secret(CreateSecretRequest(body=CreateSecretRequestBody(name=name, secret_string=value)))
            except Exception as e:  # refused, or reset mid-answer: not acknowledged
                failed += 1
                print("write failed: %s" % str(e).splitlines()[0][:200] if str(e) else type(e).__name__, file=sys.stderr, flush=True)
                time.sleep(0.1)
                continue
            log.write(json.dumps({"name": name, "value": value}) + "\n")
            log.flush()
            acked += 1
            # Paced: a project holds at most 200 secrets, and the kills
            # must land between acknowledged writes, not after the quota.
            time.sleep(0.2)
    print("writer: %d acknowledged, %d refused or failed" % (acked, failed))


def verify(log_path):
    _, csms = clients()
    lost = []
    entries = [json.loads(line) for line in open(log_path) if line.strip()]
    for entry in entries:
        try:
            version = csms.show_secret_version(ShowSecretVersionRequest(secret_name=entry["name"], version_id="latest")).version
            if version.secret_string != entry["value"]:
                lost.append(entry["name"])
        except SdkException as e:
            lost.append("%s (%s)" % (entry["name"], getattr(e, "error_code", e)))
    print("verify: %d acknowledged writes, %d lost" % (len(entries), len(lost)))
    if lost:
        print("lost: %s" % ", ".join(lost[:20]))
        sys.exit(1)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "smoke":
        smoke()
    elif mode == "write":
        write(sys.argv[2], sys.argv[3])
    elif mode == "verify":
        verify(sys.argv[2])
    else:
        sys.exit("unknown mode %s" % mode)
