"""A small S3 client of our own, over the standard library's http.client: exactly the
operations `S3BlobStore` uses.

It replaces boto3/botocore in the product (issue 16): botocore's imports, service models and
client cost 30-45 MB in every server worker process, against a 250 MB budget for the server's
processes. The parts: `signing` (AWS Signature Version 4, header and presigned), `credentials`
(settings, the AWS environment variables, the shared files, container and instance roles),
`responses` (S3's XML, parsed safely and bounded) and `client` (requests, retries, errors).
"""

from seawall.storage.s3api.client import ObjectBody, S3Client, S3Endpoint
from seawall.storage.s3api.credentials import CredentialsError, credential_chain, region_of
from seawall.storage.s3api.responses import ListedObject, ListedUpload, S3Error
from seawall.storage.s3api.signing import Credentials
from seawall.storage.s3api.transport import Body

__all__ = [
    "Body",
    "Credentials",
    "CredentialsError",
    "ListedObject",
    "ListedUpload",
    "ObjectBody",
    "S3Client",
    "S3Endpoint",
    "S3Error",
    "credential_chain",
    "region_of",
]
