"""S3's XML answers, read with the standard library's parser: refused when they carry a DTD
(no entities, so no expansion), bounded in size, and reduced to the few fields the store uses.
A malformed answer is an `S3Error`, never another exception.

The endpoint is the operator's own, but it is still a peer on the network: a proxy or a
misconfigured store can answer anything.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # DTDs are refused before parsing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

MAX_XML = 8 * 1024 * 1024  # a 1,000-key listing is about 300 KB
NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"

T = TypeVar("T")


class S3Error(OSError):
    """An S3 request that failed: the HTTP status, S3's error code (`NoSuchKey`, `SlowDown`,
    ...; the status's phrase for answers without a body, such as to `HEAD`) and message."""

    def __init__(self, status: int, code: str, message: str = "", operation: str = "") -> None:
        super().__init__(f"S3 {operation or 'request'}: {status} {code}: {message}".rstrip(": "))
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ListedObject:
    key: str
    size: int
    modified: datetime


@dataclass(frozen=True, slots=True)
class ListedUpload:
    key: str
    upload_id: str
    initiated: datetime


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next: tuple[str, str] | None  # the markers of the next page; None after the last


def parse(data: bytes, operation: str) -> ET.Element:
    """The root of an XML answer, namespaces stripped from every tag."""
    if len(data) > MAX_XML:
        raise S3Error(200, "ResponseTooLarge", f"more than {MAX_XML} bytes", operation)
    head = data[:4096].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in data.upper():
        raise S3Error(200, "MalformedResponse", "an XML answer with a DTD", operation)
    try:
        root = ET.fromstring(data)  # noqa: S314 - no DTD (checked above), bounded size
    except ET.ParseError as exc:
        raise S3Error(200, "MalformedResponse", f"not XML: {exc}", operation) from None
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]
    return root


def error_of(status: int, data: bytes, operation: str, reason: str = "") -> S3Error:
    """The error an answer of `status` describes (its XML `<Error>` when it has one)."""
    try:
        root = parse(data, operation) if data.strip() else None
    except S3Error:
        root = None
    if root is not None and root.tag == "Error":
        code = _text(root, "Code") or reason or str(status)
        return S3Error(status, code, _text(root, "Message"), operation)
    return S3Error(status, reason or str(status), "", operation)


def _text(element: ET.Element, name: str) -> str:
    found = element.find(name)
    return (found.text or "") if found is not None else ""


def _required(element: ET.Element, name: str, operation: str) -> str:
    found = element.find(name)
    if found is None or not found.text:
        raise S3Error(200, "MalformedResponse", f"no {name} in the answer", operation)
    return found.text


def _int(text: str, operation: str) -> int:
    if not text.isdigit() or len(text) > 20:
        raise S3Error(200, "MalformedResponse", f"{text[:40]!r} is not a size", operation)
    return int(text)


def _moment(text: str, operation: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise S3Error(200, "MalformedResponse", f"{text[:40]!r} is no time", operation) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def checked(data: bytes, expected: str, operation: str) -> ET.Element:
    """The root of an answer that must be `expected`. S3 can answer 200 to a copy or a
    completion and fail later: the body is then an `<Error>`, raised here."""
    root = parse(data, operation)
    if root.tag == "Error":
        raise S3Error(
            200, _text(root, "Code") or "InternalError", _text(root, "Message"), operation
        )
    if root.tag != expected:
        raise S3Error(200, "MalformedResponse", f"{root.tag} is not {expected}", operation)
    return root


def upload_id(data: bytes) -> str:
    operation = "CreateMultipartUpload"
    return _required(
        checked(data, "InitiateMultipartUploadResult", operation), "UploadId", operation
    )


def copy_etag(data: bytes, operation: str) -> str:
    expected = "CopyPartResult" if operation == "UploadPartCopy" else "CopyObjectResult"
    return _required(checked(data, expected, operation), "ETag", operation)


def objects(data: bytes) -> Page[ListedObject]:
    operation = "ListObjectsV2"
    root = checked(data, "ListBucketResult", operation)
    items = [
        ListedObject(
            _required(item, "Key", operation),
            _int(_text(item, "Size"), operation),
            _moment(_required(item, "LastModified", operation), operation),
        )
        for item in root.findall("Contents")
    ]
    token = _text(root, "NextContinuationToken")
    more = _text(root, "IsTruncated") == "true"
    if more and not token:
        raise S3Error(200, "MalformedResponse", "a truncated listing without a token", operation)
    return Page(items, (token, "") if more else None)


def uploads(data: bytes) -> Page[ListedUpload]:
    operation = "ListMultipartUploads"
    root = checked(data, "ListMultipartUploadsResult", operation)
    items = [
        ListedUpload(
            _required(item, "Key", operation),
            _required(item, "UploadId", operation),
            _moment(_required(item, "Initiated", operation), operation),
        )
        for item in root.findall("Upload")
    ]
    more = _text(root, "IsTruncated") == "true"
    markers = (_text(root, "NextKeyMarker"), _text(root, "NextUploadIdMarker"))
    if more and not markers[0]:
        raise S3Error(200, "MalformedResponse", "a truncated listing without a marker", operation)
    return Page(items, markers if more else None)


def deleted(data: bytes) -> None:
    """Raise the first key a `DeleteObjects` could not delete."""
    operation = "DeleteObjects"
    root = checked(data, "DeleteResult", operation)
    for error in root.findall("Error"):
        key, code = _text(error, "Key"), _text(error, "Code") or "InternalError"
        raise S3Error(200, code, f"{key}: {_text(error, 'Message')}", operation)


def completed(data: bytes) -> None:
    checked(data, "CompleteMultipartUploadResult", "CompleteMultipartUpload")


def complete_body(parts: list[tuple[int, str]]) -> bytes:
    root = ET.Element("CompleteMultipartUpload", xmlns=NAMESPACE)
    for number, etag in parts:
        part = ET.SubElement(root, "Part")
        ET.SubElement(part, "PartNumber").text = str(number)
        ET.SubElement(part, "ETag").text = etag
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def delete_body(keys: list[str]) -> bytes:
    root = ET.Element("Delete", xmlns=NAMESPACE)
    ET.SubElement(root, "Quiet").text = "true"
    for key in keys:
        ET.SubElement(ET.SubElement(root, "Object"), "Key").text = key
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
