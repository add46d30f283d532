"""AWS S3: an access key pair, optionally a session token, region and bucket."""

from django.utils.translation import gettext_lazy as _

from byok.services.base import CredentialField, Service


class AWSS3(Service):
    id = "aws_s3"
    name = "AWS S3"
    category = "storage"
    fields = (
        CredentialField("access_key_id", _("Access key ID"), secret=False),
        CredentialField("secret_access_key", _("Secret access key")),
        CredentialField("region", _("Region"), secret=False, required=False),
        CredentialField("bucket", _("Bucket"), secret=False, required=False),
        CredentialField("session_token", _("Session token"), required=False),
    )
    key_prefixes = ("AKIA", "ASIA")
    # The access key id is what the AWS console shows to tell keys apart.
    hint_field = "access_key_id"
