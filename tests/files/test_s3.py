"""S3 on moto_server: the big form upload, the 5 x 5 MiB multipart grant, the POST policy
document (moto accepts expired or oversized posts, so the policy and persisty's own
finalize-time checks are what is tested), single PUT vs multipart writes, Range reads."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import boto3
import httpx
import pytest
from tests.files._engines import ENGINES, NAMESPACE, endpoint, s3_url

import persisty.files
from persisty.errors import ValidationError
from persisty.files import FileStore, Limits
from persisty.files._sync.s3 import SINGLE_PUT, S3Blobs
from persisty.testing._files_data import payload

MIB = 1024 * 1024


@pytest.fixture
def files() -> Iterator[FileStore]:
    store = persisty.files.connect(
        s3_url("big"), name="s3test", catalog=ENGINES["sqlite"], namespace=NAMESPACE
    )
    try:
        yield store
    finally:
        for info in store.list_all():
            store.delete(info.key)
        store.gc(older_than=0)
        store.close()


def _s3_blobs(files: FileStore) -> S3Blobs:
    assert isinstance(files.blobs, S3Blobs)
    return files.blobs


def _objects(files: FileStore) -> list[Mapping[str, object]]:
    s3 = boto3.client("s3", endpoint_url=endpoint(), region_name="us-east-1")
    blobs = _s3_blobs(files)
    answer = s3.list_objects_v2(Bucket=blobs.bucket, Prefix=blobs.base)
    return list(answer.get("Contents", []))


def test_form_upload_of_25_000_000_bytes_then_ranged_read(files: FileStore) -> None:
    data = os.urandom(25_000_000)
    sha = hashlib.sha256(data).hexdigest()
    grant = files.upload_grant(
        "big/video.bin", size=len(data), content_type="application/octet-stream", sha256=sha
    )
    answer = httpx.post(
        grant.url, data=grant.fields, files={"file": ("video.bin", data)}, timeout=120
    )
    assert answer.status_code == 204, answer.text
    info = files.complete_upload(grant.upload_id)
    assert (info.size, info.etag) == (25_000_000, sha)
    assert files.read("big/video.bin", start=-10) == data[-10:]
    assert (
        files.read("big/video.bin", start=12_345_678, end=12_345_700) == data[12_345_678:12_345_700]
    )
    # the staging object is gone; one blob remains
    keys = [str(o["Key"]) for o in _objects(files)]
    assert len(keys) == 1 and "/blobs/" in keys[0]


def test_multipart_grant_5_x_5_mib(files: FileStore) -> None:
    data = os.urandom(25 * MIB)
    grant = files.upload_grant(
        "mp/five.bin",
        size=len(data),
        content_type="application/octet-stream",
        part_size=5 * MIB,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    assert len(grant.parts) == 5 and grant.method == "PUT"
    collected = []
    for part in grant.parts:
        at = (part.part_number - 1) * 5 * MIB
        answer = httpx.put(part.url, content=data[at : at + part.size], timeout=60)
        assert answer.status_code == 200
        collected.append({"part_number": part.part_number, "etag": answer.headers["etag"]})
    info = files.complete_upload(grant.upload_id, collected)
    assert info.etag == hashlib.sha256(data).hexdigest() and info.size == 25 * MIB
    assert files.read("mp/five.bin", start=-10) == data[-10:]
    assert files.complete_upload(grant.upload_id, collected) == info


def test_the_post_policy_pins_key_type_size_and_expiry(files: FileStore) -> None:
    before = datetime.now(UTC)
    grant = files.upload_grant("p/a.png", size=1234, content_type="image/png", expires_in=120)
    policy = json.loads(base64.b64decode(grant.fields["policy"]))
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert 100 <= (expiration - before).total_seconds() <= 130
    conditions = policy["conditions"]
    assert ["content-length-range", 1234, 1234] in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert {"key": grant.fields["key"]} in conditions
    assert {"bucket": _s3_blobs(files).bucket} in conditions
    assert "/uploads/" in grant.fields["key"]  # lands on a staging key, never the blob


def test_finalize_checks_what_moto_lets_through(files: FileStore) -> None:
    # moto accepts a post larger than the policy allows: complete_upload refuses it
    grant = files.upload_grant("c/x.bin", size=100, content_type="application/octet-stream")
    httpx.post(grant.url, data=grant.fields, files={"file": ("x", payload(200))})
    with pytest.raises(ValidationError) as e:
        files.complete_upload(grant.upload_id)
    assert e.value.code == "file_too_large"
    # and a post after the grant expired
    expired = files.upload_grant(
        "c/y.bin", size=10, content_type="application/octet-stream", expires_in=0
    )
    httpx.post(expired.url, data=expired.fields, files={"file": ("y", payload(10))})
    with pytest.raises(ValidationError) as e:
        files.complete_upload(expired.upload_id)
    assert e.value.code == "upload_expired"
    # bytes that are not what the type says (sniffed from a 4 KiB ranged GET)
    png = files.upload_grant("c/z.png", size=5000, content_type="image/png")
    httpx.post(png.url, data=png.fields, files={"file": ("z", payload(5000))})
    with pytest.raises(ValidationError) as e:
        files.complete_upload(png.upload_id)
    assert e.value.code == "content_type_mismatch"
    assert files.count() == 0
    assert [o for o in _objects(files) if "/blobs/" in str(o["Key"])] == []


def test_single_put_up_to_8_mib_multipart_beyond(files: FileStore) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint(), region_name="us-east-1")
    small = files.put("small", payload(SINGLE_PUT))
    big = files.put("big", payload(SINGLE_PUT + 1))
    blobs = _s3_blobs(files)
    for info, multipart in [(small, False), (big, True)]:
        head = s3.head_object(Bucket=blobs.bucket, Key=blobs.key(info.blob))
        assert head["ETag"].strip('"').endswith("-2") == multipart, head["ETag"]
    assert files.read("big", start=SINGLE_PUT - 5) == payload(SINGLE_PUT + 1)[-6:]
    # blobs are written with IfNoneMatch="*": an existing blob is never overwritten
    with pytest.raises(persisty.Conflict):
        files.blobs.write(small.blob, iter([b"x"]))
    assert files.read("small", start=-3) == payload(SINGLE_PUT)[-3:]


def test_download_url_is_presigned_with_disposition(files: FileStore) -> None:
    files.put("d/report.pdf", b"%PDF-1.4 hello", filename="Report é.pdf")
    url = files.download_url("d/report.pdf", expires_in=60, disposition="inline")
    answer = httpx.get(url)
    assert answer.status_code == 200 and answer.content == b"%PDF-1.4 hello"
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"].startswith("inline; filename*=UTF-8''")
    ranged = httpx.get(url, headers={"Range": "bytes=-5"})
    assert ranged.status_code == 206 and ranged.content == b"hello"


def test_needs_a_catalog_and_limits_apply() -> None:
    with pytest.raises(ValidationError) as e:
        persisty.files.connect(s3_url())
    assert e.value.field == "catalog"
    with pytest.raises(ValidationError):
        persisty.files.connect("s3://bucket?nope=1", catalog="memory://")
    files = persisty.files.connect(s3_url(), catalog="memory://", limits=Limits(max_size=10))
    try:
        with pytest.raises(ValidationError) as e:
            files.upload_grant("x", size=11, content_type="text/plain")
        assert e.value.code == "file_too_large"
    finally:
        files.close()
