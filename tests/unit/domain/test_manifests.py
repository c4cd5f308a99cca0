"""parse_manifest: every media type Seawall stores, and a precise message for every refusal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from seawall.domain.digests import Digest
from seawall.domain.manifests import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    ParsedManifest,
    is_scannable,
    parse_manifest,
)
from seawall.errors import ErrorCode, RegistryError

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
SBOM = "application/spdx+json"


def descriptor(media_type: str, seed: str, **extra: Any) -> dict[str, Any]:
    data = seed.encode()
    return {
        "mediaType": media_type,
        "digest": str(Digest.of(data)),
        "size": len(data),
        **extra,
    }


def oci_image(**extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, "config"),
        "layers": [descriptor(OCI_LAYER, "layer0"), descriptor(OCI_LAYER, "layer1")],
        **extra,
    }


def oci_index(**extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            descriptor(OCI_MANIFEST, "amd64", platform={"architecture": "amd64", "os": "linux"}),
            descriptor(OCI_MANIFEST, "arm64", platform={"architecture": "arm64", "os": "linux"}),
        ],
        **extra,
    }


def docker_image() -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, "config"),
        "layers": [descriptor(DOCKER_LAYER, "layer0")],
    }


def docker_list() -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [descriptor(DOCKER_MANIFEST, "amd64")],
    }


def parse(document: Any, content_type: str | None = None) -> ParsedManifest:
    return parse_manifest(json.dumps(document).encode(), content_type)


def invalid(document: Any, content_type: str | None = None) -> str:
    """Parse a document that must be refused; return the message."""
    payload = document if isinstance(document, bytes) else json.dumps(document).encode()
    with pytest.raises(RegistryError) as info:
        parse_manifest(payload, content_type)
    assert info.value.code is ErrorCode.MANIFEST_INVALID
    return info.value.message


def as_descriptor(value: dict[str, Any]) -> Descriptor:
    return Descriptor(value["mediaType"], value["digest"], value["size"])


# -- accepted -------------------------------------------------------------------------------


def test_oci_image_manifest() -> None:
    document = oci_image(annotations={"org.opencontainers.image.title": "x"})
    parsed = parse(document, OCI_MANIFEST)
    assert parsed.media_type == OCI_MANIFEST
    assert parsed.blobs == (
        as_descriptor(document["config"]),
        *(as_descriptor(layer) for layer in document["layers"]),
    )
    assert parsed.children == ()
    assert parsed.subject is None
    assert parsed.annotations == {"org.opencontainers.image.title": "x"}


def test_oci_image_artifact_type_falls_back_to_the_config_media_type() -> None:
    assert parse(oci_image()).artifact_type == OCI_CONFIG


def test_oci_index() -> None:
    document = oci_index()
    parsed = parse(document, OCI_INDEX)
    assert parsed.media_type == OCI_INDEX
    assert parsed.blobs == ()
    assert [c.digest for c in parsed.children] == [m["digest"] for m in document["manifests"]]
    assert parsed.artifact_type is None
    assert parsed.annotations == {}


def test_oci_index_may_be_empty() -> None:
    assert parse({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).children == ()


def test_docker_schema2_manifest() -> None:
    document = docker_image()
    parsed = parse(document, DOCKER_MANIFEST)
    assert parsed.media_type == DOCKER_MANIFEST
    assert parsed.blobs[0] == as_descriptor(document["config"])
    assert len(parsed.blobs) == 2
    assert parsed.artifact_type is None  # no fallback outside OCI image manifests


def test_docker_manifest_list() -> None:
    parsed = parse(docker_list(), DOCKER_LIST)
    assert parsed.media_type == DOCKER_LIST
    assert [c.media_type for c in parsed.children] == [DOCKER_MANIFEST]


def test_artifact_with_artifact_type_and_subject() -> None:
    subject = descriptor(OCI_MANIFEST, "the image")
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SBOM,
        "config": descriptor(EMPTY_CONFIG, "{}"),
        "layers": [descriptor(SBOM, "sbom", annotations={"k": "v"})],
        "subject": subject,
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }
    parsed = parse(document, OCI_MANIFEST)
    assert parsed.artifact_type == SBOM  # artifactType wins over config.mediaType
    assert parsed.subject == as_descriptor(subject)
    assert parsed.blobs[1].annotations == {"k": "v"}
    assert parsed.annotations == {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}


def test_index_with_artifact_type_and_subject() -> None:
    subject = descriptor(OCI_INDEX, "the index")
    parsed = parse(oci_index(artifactType=SBOM, subject=subject))
    assert parsed.artifact_type == SBOM
    assert parsed.subject == as_descriptor(subject)


def test_descriptor_keeps_artifact_type() -> None:
    child = descriptor(OCI_MANIFEST, "child", artifactType=SBOM)
    parsed = parse({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child]})
    assert parsed.children[0].artifact_type == SBOM
    assert parsed.children[0].to_json() == child


def test_null_subject_is_no_subject() -> None:
    assert parse(oci_image(subject=None)).subject is None


# -- mediaType: body, Content-Type, inference -----------------------------------------------


@pytest.mark.parametrize("content_type", [None, "", "application/json", OCI_MANIFEST])
def test_missing_media_type_image_is_inferred_by_shape(content_type: str | None) -> None:
    document = oci_image()
    del document["mediaType"]
    assert parse(document, content_type).media_type == OCI_MANIFEST


@pytest.mark.parametrize("content_type", [None, "application/json", OCI_INDEX])
def test_missing_media_type_index_is_inferred_by_shape(content_type: str | None) -> None:
    document = oci_index()
    del document["mediaType"]
    assert parse(document, content_type).media_type == OCI_INDEX


def test_missing_media_type_takes_the_content_type() -> None:
    document = docker_image()
    del document["mediaType"]
    assert parse(document, DOCKER_MANIFEST).media_type == DOCKER_MANIFEST


@pytest.mark.parametrize(
    "content_type",
    [
        f"{OCI_MANIFEST}; charset=utf-8",
        OCI_MANIFEST.upper(),
        f"  {OCI_MANIFEST}  ",
        "application/json",
        "*/*",
    ],
)
def test_content_type_matching_the_body(content_type: str) -> None:
    assert parse(oci_image(), content_type).media_type == OCI_MANIFEST


@pytest.mark.parametrize(
    ("document", "content_type"),
    [
        (oci_image(), OCI_INDEX),
        (oci_image(), DOCKER_MANIFEST),
        (docker_image(), OCI_MANIFEST),
        (oci_index(), DOCKER_LIST),
    ],
)
def test_content_type_contradicting_the_body(document: dict[str, Any], content_type: str) -> None:
    message = invalid(document, content_type)
    assert "Content-Type" in message
    assert content_type in message
    assert document["mediaType"] in message


def test_unknown_media_type_in_body() -> None:
    message = invalid(oci_image(mediaType="application/vnd.example+json"))
    assert "application/vnd.example+json" in message


def test_unknown_content_type_without_body_media_type() -> None:
    document = oci_image()
    del document["mediaType"]
    assert "text/plain" in invalid(document, "text/plain")


def test_non_string_media_type() -> None:
    assert "mediaType" in invalid(oci_image(mediaType=2))


def test_missing_media_type_with_index_content_type_but_image_shape() -> None:
    document = oci_image()
    del document["mediaType"]
    assert "'config' or 'layers'" in invalid(document, OCI_INDEX)


# -- Docker schema 1 ------------------------------------------------------------------------


SCHEMA1 = {
    "schemaVersion": 1,
    "name": "library/hello",
    "tag": "latest",
    "architecture": "amd64",
    "fsLayers": [{"blobSum": str(Digest.of(b"layer"))}],
    "history": [{"v1Compatibility": "{}"}],
}


@pytest.mark.parametrize("content_type", [*DOCKER_SCHEMA1, None])
def test_schema1_is_rejected(content_type: str | None) -> None:
    invalid(SCHEMA1, content_type)


@pytest.mark.parametrize("content_type", DOCKER_SCHEMA1)
def test_schema1_with_schema_version_2_is_rejected_by_name(content_type: str) -> None:
    assert "schema 1" in invalid({**SCHEMA1, "schemaVersion": 2}, content_type)


@pytest.mark.parametrize("media_type", DOCKER_SCHEMA1)
def test_schema1_media_type_in_body_is_rejected_by_name(media_type: str) -> None:
    message = invalid({**SCHEMA1, "schemaVersion": 2, "mediaType": media_type})
    assert "schema 1" in message or media_type in message


@pytest.mark.parametrize("content_type", DOCKER_SCHEMA1)
def test_schema1_message_names_schema1(content_type: str) -> None:
    # A real schema 1 manifest has schemaVersion 1: the client should learn that schema 1 is
    # unsupported, not that "schemaVersion must be 2".
    assert "schema 1" in invalid(SCHEMA1, content_type)


# -- not a manifest at all ------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"{", b"not json", b'{"a": 1} x'])
def test_invalid_json(payload: bytes) -> None:
    assert "not valid JSON" in invalid(payload)


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xfe\xfd",
        json.dumps(oci_image()).encode("utf-16"),  # json.loads(bytes) would have taken it
        b'{"schemaVersion": 2, "annotations": {"a": "\xc3"}}',
    ],
    ids=["garbage", "utf-16", "truncated-sequence"],
)
def test_a_manifest_is_utf8(payload: bytes) -> None:
    assert "not UTF-8" in invalid(payload)


def test_a_utf8_bom_is_not_json() -> None:
    # Go's encoding/json (Distribution, containerd) refuses it too: one reading per manifest.
    assert "not valid JSON" in invalid(b"\xef\xbb\xbf" + json.dumps(oci_image()).encode())


@pytest.mark.parametrize(
    ("escape", "named"),
    [("\\u0000", "NUL"), ("\\udfff", "U+DFFF"), ("\\ud800", "U+D800"), ("a\\ud83dz", "U+D83D")],
)
@pytest.mark.parametrize("where", ["annotation value", "annotation key", "artifactType", "layer"])
def test_strings_no_database_can_store_are_refused(escape: str, named: str, where: str) -> None:
    # The JSON escape spells a NUL or a lone surrogate: PostgreSQL refuses the first, no UTF-8
    # encoder writes the second, so stored they would break the referrers listing for everyone.
    document = oci_image()
    text = json.dumps(document)
    if where == "annotation value":
        text = text[:-1] + ', "annotations": {"k": "v' + escape + '"}}'
    elif where == "annotation key":
        text = text[:-1] + ', "annotations": {"k' + escape + '": "v"}}'
    elif where == "artifactType":
        text = text[:-1] + ', "artifactType": "application/x' + escape + '"}'
    else:
        text = text.replace(OCI_LAYER, OCI_LAYER + escape, 1)
    message = invalid(text.encode())
    assert named in message, message


def test_valid_surrogate_pairs_and_newlines_are_text() -> None:
    # An escaped pair is one real character; free text may hold newlines and tabs.
    parsed = parse_manifest(
        (
            json.dumps(oci_image())[:-1] + ', "annotations": {"k": "\\ud83d\\ude00 a\\nb\\tc"}}'
        ).encode(),
        OCI_MANIFEST,
    )
    assert parsed.annotations == {"k": "\U0001f600 a\nb\tc"}


@pytest.mark.parametrize("size", [2**63, 10**30])
def test_sizes_beyond_int64_are_refused(size: int) -> None:
    document = oci_image()
    document["layers"][0]["size"] = size
    assert "larger than any blob" in invalid(document)


def test_the_largest_int64_size_is_a_size() -> None:
    document = oci_image()
    document["layers"][0]["size"] = 2**63 - 1
    assert parse_manifest(json.dumps(document).encode(), OCI_MANIFEST).blobs[1].size == 2**63 - 1


@pytest.mark.parametrize(
    "artifact_type",
    ["x" * 300, "application", "application/", "a/b c", "application/vnd.x\n", "/json"],
)
def test_an_artifact_type_is_a_media_type(artifact_type: str) -> None:
    assert "is not a media type" in invalid(oci_image(artifactType=artifact_type))


def test_a_config_media_type_reported_as_artifact_type_is_a_media_type() -> None:
    document = oci_image()
    document["config"]["mediaType"] = "not a media type"
    assert "config.mediaType" in invalid(document)


@pytest.mark.parametrize(
    "artifact_type",
    [
        "application/vnd.nhl.peanut.butter.bagel",
        "application/spdx+json",
        "text/plain; charset=utf-8",
    ],
)
def test_media_types_with_parameters_are_artifact_types(artifact_type: str) -> None:
    parsed = parse_manifest(json.dumps(oci_image(artifactType=artifact_type)).encode(), None)
    assert parsed.artifact_type == artifact_type


def test_deeply_nested_json_is_invalid_not_a_crash() -> None:
    # Well under the 4 MiB manifest limit; must be MANIFEST_INVALID, not a RecursionError (500).
    assert invalid(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize("document", [[], [oci_image()], "manifest", 2, None, True])
def test_non_object(document: Any) -> None:
    assert "JSON object" in invalid(document)


@pytest.mark.parametrize("version", [None, 0, 3, "2", "1", True, False, [2], {"v": 2}])
def test_schema_version_must_be_2(version: Any) -> None:
    document = oci_image(schemaVersion=version)
    if version is None:
        del document["schemaVersion"]
    assert "schemaVersion" in invalid(document)


# -- descriptors ----------------------------------------------------------------------------


def _break(field: str, value: Any) -> dict[str, Any]:
    """An OCI image whose first layer has `field` set to `value` (removed for ...)."""
    document = oci_image()
    layer = document["layers"][0]
    if value is ...:
        del layer[field]
    else:
        layer[field] = value
    return document


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("digest", ..., "digest is required"),
        ("digest", None, "digest is required"),
        ("digest", 12, "digest is required"),
        ("digest", "sha256:abc", "64 lowercase hex"),
        ("digest", "md5:" + "a" * 32, "'md5' is not supported"),
        ("digest", "not a digest", "malformed digest"),
        ("size", ..., "size is required"),
        ("size", -1, "non-negative"),
        ("size", True, "non-negative integer"),
        ("size", 1.5, "non-negative integer"),
        ("size", "10", "non-negative integer"),
        ("mediaType", ..., "mediaType is required"),
        ("mediaType", "", "mediaType is required"),
        ("mediaType", 5, "mediaType is required"),
        ("artifactType", 5, "artifactType must be a string"),
        ("annotations", ["a"], "annotations must map strings to strings"),
        ("annotations", {"a": 1}, "annotations must map strings to strings"),
    ],
)
def test_bad_layer_descriptor(field: str, value: Any, words: str) -> None:
    message = invalid(_break(field, value))
    assert message.startswith("layers[0]: ")
    assert words in message


def test_size_zero_is_fine() -> None:
    assert parse(_break("size", 0)).blobs[1].size == 0


@pytest.mark.parametrize("config", [None, "sha256:abc", [], 1])
def test_config_must_be_a_descriptor(config: Any) -> None:
    document = oci_image(config=config)
    if config is None:
        del document["config"]
    assert invalid(document).startswith("config: a descriptor must be a JSON object")


def test_bad_config_digest_names_config() -> None:
    document = oci_image()
    document["config"]["digest"] = "sha256:" + "A" * 64
    assert invalid(document).startswith("config: ")


def test_bad_subject_names_subject() -> None:
    subject = descriptor(OCI_MANIFEST, "s")
    subject["size"] = -5
    assert invalid(oci_image(subject=subject)).startswith("subject: ")
    assert invalid(oci_image(subject="sha256:" + "a" * 64)).startswith("subject: ")


def test_bad_index_entry_names_its_position() -> None:
    document = oci_index()
    document["manifests"][1]["digest"] = "sha256:short"
    assert invalid(document).startswith("manifests[1]: ")


def test_layers_must_be_an_array() -> None:
    assert "layers must be an array" in invalid(oci_image(layers={"0": "x"}))


def test_docker_manifest_needs_a_layer() -> None:
    document = docker_image()
    document["layers"] = []
    assert "at least one layer" in invalid(document)


@pytest.mark.parametrize("artifact_type", ["", 3, ["x"]])
def test_manifest_artifact_type_must_be_a_non_empty_string(artifact_type: Any) -> None:
    assert "artifactType" in invalid(oci_image(artifactType=artifact_type))


# -- shapes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["config", "layers"])
def test_index_with_config_or_layers(field: str) -> None:
    document = oci_index(**{field: oci_image()[field]})
    message = invalid(document)
    assert OCI_INDEX in message
    assert "'config' or 'layers'" in message


def test_manifest_list_with_layers() -> None:
    assert DOCKER_LIST in invalid({**docker_list(), "layers": []})


def test_image_with_manifests() -> None:
    message = invalid(oci_image(manifests=[]))
    assert OCI_MANIFEST in message
    assert "'manifests'" in message


@pytest.mark.parametrize("manifests", [..., None, {}, "x"])
def test_index_manifests_must_be_an_array(manifests: Any) -> None:
    document = oci_index()
    if manifests is ...:
        del document["manifests"]
    else:
        document["manifests"] = manifests
    assert "manifests is required and must be an array" in invalid(document)


# -- annotations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "annotations", [[], "a=b", {"a": 1}, {"a": None}, {"a": {"b": "c"}}, {"a": ["b"]}]
)
def test_bad_manifest_annotations(annotations: Any) -> None:
    assert invalid(oci_image(annotations=annotations)) == (
        "manifest: annotations must map strings to strings"
    )


def test_bad_index_annotations() -> None:
    assert "annotations" in invalid(oci_index(annotations={"a": 1}))


def test_empty_annotations_are_fine() -> None:
    assert parse(oci_image(annotations={})).annotations == {}


def _image_with_layers(*layer_types: str) -> bytes:
    digest = "sha256:" + "c" * 64
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest,
                "size": 2,
            },
            "layers": [{"mediaType": t, "digest": digest, "size": 2} for t in layer_types],
        }
    ).encode()


@pytest.mark.parametrize(
    ("layers", "scannable"),
    [
        ((), True),  # scratch: a config and no layer
        (("application/vnd.oci.image.layer.v1.tar+gzip",), True),
        (("application/vnd.oci.image.layer.v1.tar+zstd",), True),
        (("application/vnd.docker.image.rootfs.diff.tar.gzip",), True),
        (("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",), True),
        # cosign's `.sig` and `.att` manifests: an image config, JSON layers
        (("application/vnd.dev.cosign.simplesigning.v1+json",), False),
        (("application/vnd.dsse.envelope.v1+json",), False),
    ],
)
def test_cosign_signatures_and_attestations_are_artifacts_not_images(
    layers: tuple[str, ...], scannable: bool
) -> None:
    parsed = parse_manifest(
        _image_with_layers(*layers), "application/vnd.oci.image.manifest.v1+json"
    )
    assert is_scannable(parsed) is scannable
