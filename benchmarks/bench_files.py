"""persisty.files vs the plain ways of storing the same bytes, in one run.

    .venv/bin/python benchmarks/bench_files.py [--small 20] [--large 3] [--no-s3]

Throughput (MB/s) of ``put`` and ``read`` of 1 MiB and 64 MiB files:

- chunks on SQLite (``db.files()``: 256 KiB chunks as raw rows of a BLOB column) vs
  plain ``open()`` writes to disk and vs diskcache ``set(read=True)`` / ``get(read=True)``;
- a directory store (``dir://``: temp file, fsync, rename) vs plain ``open()`` writes
  (with and without fsync);
- S3 on moto_server (``source scripts/services`` first) vs raw ``boto3.upload_fileobj`` /
  ``download_fileobj``.

Each line prints the ratio to its baseline (higher is better for persisty). Every contender
runs in the same process on the same bytes, the contenders taking turns in every round.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import persisty
import persisty.files

MIB = 1024 * 1024


def timed(work: Callable[[int], object], i: int) -> float:
    """The seconds ``work(i)`` takes."""
    start = time.perf_counter()
    work(i)
    return time.perf_counter() - start


def interleaved(
    pairs: dict[str, tuple[Callable[[int], object], Callable[[int], object]]],
    repeat: int,
    mb: float,
) -> dict[str, tuple[float, float]]:
    """MB/s of each contender's put and read, the contenders taking turns in every round
    (so a burst of load on the shared machine hits them alike); the median of the rounds."""
    for put, read in pairs.values():  # warm up: tables, connections, directories
        put(-1)
        read(-1)
    puts: dict[str, list[float]] = {name: [] for name in pairs}
    reads: dict[str, list[float]] = {name: [] for name in pairs}
    for i in range(repeat):
        for name, (put, _) in pairs.items():
            puts[name].append(timed(put, i))
        for name, (_, read) in pairs.items():
            reads[name].append(timed(read, i))
    return {
        name: (mb / statistics.median(puts[name]), mb / statistics.median(reads[name]))
        for name in pairs
    }


def plain(
    root: Path, data: bytes, fsync: bool
) -> tuple[Callable[[int], object], Callable[[int], object]]:
    root.mkdir(parents=True, exist_ok=True)

    def put(i: int) -> None:
        with open(root / f"plain{i}", "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())

    def read(i: int) -> bytes:
        with open(root / f"plain{i}", "rb") as f:
            return f.read()

    return put, read


def diskcache_contender(
    root: Path, data: bytes
) -> tuple[Callable[[int], object], Callable[[int], object]]:
    import diskcache  # type: ignore[import-untyped]

    cache = diskcache.Cache(str(root / "diskcache"))

    def put(i: int) -> None:
        cache.set(f"k{i}", io.BytesIO(data), read=True)

    def read(i: int) -> bytes:
        handle = cache.get(f"k{i}", read=True)
        try:
            return bytes(handle.read())
        finally:
            handle.close()

    return put, read


def files_contender(
    files: persisty.files.FileStore, data: bytes
) -> tuple[Callable[[int], object], Callable[[int], object]]:
    def put(i: int) -> None:
        files.put(f"k{i}", data)

    def read(i: int) -> bytes:
        return files.read(f"k{i}")

    return put, read


def boto3_contender(
    data: bytes, bucket: str
) -> tuple[Callable[[int], object], Callable[[int], object]]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")

    def put(i: int) -> None:
        s3.upload_fileobj(io.BytesIO(data), bucket, f"raw/k{i}")

    def read(i: int) -> bytes:
        out = io.BytesIO()
        s3.download_fileobj(bucket, f"raw/k{i}", out)
        return out.getvalue()

    return put, read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=30, help="repeats of the 1 MiB file")
    parser.add_argument("--large", type=int, default=5, help="repeats of the 64 MiB file")
    parser.add_argument("--no-s3", action="store_true", help="skip S3 (no moto_server)")
    args = parser.parse_args()
    s3 = not args.no_s3 and bool(os.environ.get("AWS_ENDPOINT_URL"))
    root = Path(tempfile.mkdtemp(prefix="persisty-bench-files-"))
    print(
        "measured under load on a shared 2-core machine; MB/s (1 MB = 2**20 bytes), "
        "median of the repeats"
    )
    print(
        f"{'size':>6} {'contender':<34} {'put MB/s':>9} {'read MB/s':>10} "
        f"{'put ratio':>10} {'read ratio':>11}  baseline"
    )
    try:
        for size, repeat in [(MIB, args.small), (64 * MIB, args.large)]:
            data = os.urandom(size)
            mb = size / MIB
            run_dir = root / f"s{size}"
            run_dir.mkdir()
            pairs: dict[str, tuple[Callable[[int], object], Callable[[int], object]]] = {}
            closing: list[Callable[[], object]] = []
            pairs["plain open()"] = plain(run_dir / "p1", data, fsync=False)
            pairs["plain open() + fsync"] = plain(run_dir / "p2", data, fsync=True)
            pairs["diskcache set(read=True)"] = diskcache_contender(run_dir, data)
            db = persisty.connect(f"sqlite:///{run_dir / 'files.db'}", page_size=65536)
            pairs["chunks on SQLite"] = files_contender(db.files("bench"), data)
            closing.append(db.close)
            directory = persisty.files.connect(
                f"dir://{run_dir / 'dir'}", name="bench", catalog=f"sqlite:///{run_dir / 'cat.db'}"
            )
            pairs["directory (dir://)"] = files_contender(directory, data)
            closing.append(directory.close)
            if s3:
                import boto3

                bucket = "bench-" + uuid.uuid4().hex[:8]
                boto3.client(
                    "s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1"
                ).create_bucket(Bucket=bucket)
                pairs["raw boto3 upload_fileobj"] = boto3_contender(data, bucket)
                on_s3 = persisty.files.connect(
                    f"s3://{bucket}/p", name="bench", catalog=f"sqlite:///{run_dir / 's3cat.db'}"
                )
                pairs["S3 (moto)"] = files_contender(on_s3, data)
                closing.append(on_s3.close)
            results = interleaved(pairs, repeat, mb)
            for close in closing:
                close()
            rows = [
                ("plain open()", None),
                ("plain open() + fsync", None),
                ("diskcache set(read=True)", None),
                ("chunks on SQLite", "plain open()"),
                ("chunks on SQLite", "plain open() + fsync"),
                ("chunks on SQLite", "diskcache set(read=True)"),
                ("directory (dir://)", "plain open()"),
                ("directory (dir://)", "plain open() + fsync"),
            ]
            if s3:
                rows += [
                    ("raw boto3 upload_fileobj", None),
                    ("S3 (moto)", "raw boto3 upload_fileobj"),
                ]
            for name, base in rows:
                put_rate, read_rate = results[name]
                ratios = ""
                if base is not None:
                    bput, bread = results[base]
                    ratios = f"{put_rate / bput:>9.2f}x {read_rate / bread:>10.2f}x  {base}"
                print(f"{int(mb):>4}Mi {name:<34} {put_rate:>9.1f} {read_rate:>10.1f} {ratios}")
            shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
