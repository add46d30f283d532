"""AWS KMS on 127.0.0.1: moto's server (real HTTP, the real boto3 client), started once
per test process, and the ``BYOK["KMS"]`` that names a new key on it."""

from __future__ import annotations

import atexit
import base64
import functools
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

#: What moto accepts; boto3 needs some credentials to sign with.
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"


@functools.cache
def kms_url() -> str:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    atexit.register(server.stop)
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}"


def kms_client() -> Any:
    return boto3.client("kms", endpoint_url=kms_url(), region_name=REGION, **CREDENTIALS)


def kms_options(key_id: str | None = None, **more: Any) -> dict[str, Any]:
    """``BYOK["KMS"]`` for ``key_id`` (a new key if ``None``) on the local KMS."""
    if key_id is None:
        key_id = kms_client().create_key()["KeyMetadata"]["KeyId"]
    return {
        "KEY_ID": key_id,
        "REGION": REGION,
        "ENDPOINT_URL": kms_url(),
        "CLIENT_OPTIONS": CREDENTIALS,
        **more,
    }


def data_keys_in_the_clear() -> list[str]:
    """Every stored data key, unwrapped, as ``ENCRYPTION_KEYS`` would write it: what an
    error report must never show."""
    from byok.kms import AwsKms
    from byok.models import DataKey

    client = kms_client()
    return [
        base64.urlsafe_b64encode(
            client.decrypt(
                CiphertextBlob=base64.b64decode(wrapped), EncryptionContext=AwsKms.CONTEXT
            )["Plaintext"]
        ).decode()
        for wrapped in DataKey.objects.values_list("wrapped", flat=True)
    ]
