"""Read Qt resource bundles (.rcc files, as written by Qt's `rcc -binary`), without Qt.

    python bench/qt_resources.py /usr/share/gcompris-qt/rcc/details.rcc             # list the entries
    python bench/qt_resources.py /usr/share/gcompris-qt/rcc/details.rcc --out DIR   # extract them all

bench/paintings.py uses it to take the public-domain paintings out of Debian's gcompris-qt-data.

The format (Qt's src/tools/rcc/rcc.cpp writes it, src/corelib/io/qresource.cpp reads it), all
integers big-endian:
  header   "qres", version (1, 2 or 3), tree offset, data offset, names offset, and for version 3
           a flags word saying which compressions the bundle uses (not needed to read it);
  tree     nodes of 14 bytes (version 1) or 22 (version 2+: an 8-byte last-modified time in ms
           appended). Node 0 is the root. Each node: name offset (4), flags (2: 1 zlib, 2 directory,
           4 zstd), then for a directory its child count (4) and first child's node index (4),
           for a file its territory (2), language (2) and data offset (4);
  names    length in UTF-16 units (2), qt_hash of the name (4), the name in UTF-16BE;
  data     length (4) then the bytes; a zlib entry's bytes are qCompress's output (the
           uncompressed length (4) then a zlib stream), a zstd entry's a zstd frame.
"""
from __future__ import annotations

import argparse
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"qres"
ZLIB, DIRECTORY, ZSTD = 0x01, 0x02, 0x04


def qt_hash(name: str) -> int:
    """Qt's qt_hash over UTF-16 units: rcc sorts a directory's children by it (readers bisect on it)."""
    h = 0
    for unit in struct.unpack(f">{len(name.encode('utf-16-be')) // 2}H", name.encode("utf-16-be")):
        h = ((h << 4) + unit) & 0xFFFFFFFF
        h ^= (h & 0xF0000000) >> 23
        h &= 0x0FFFFFFF
    return h


@dataclass(frozen=True)
class Entry:
    """One file in a bundle: its path (no leading '/'), node flags and data offset."""

    path: str
    flags: int
    data_offset: int


class Bundle:
    """A parsed .rcc bundle held in memory; `read(path)` returns an entry's uncompressed bytes."""

    def __init__(self, blob: bytes, source: str = "<bytes>"):
        self.blob, self.source = blob, source
        if blob[:4] != MAGIC:
            raise ValueError(f"{source}: not a Qt resource bundle (no 'qres' magic)")
        self.version, self.tree, self.data, self.names = struct.unpack_from(">4I", blob, 4)
        if self.version not in (1, 2, 3):
            raise ValueError(f"{source}: unknown rcc format version {self.version}")
        self.node_size = 14 if self.version == 1 else 22
        self.entries: dict[str, Entry] = {}
        self._walk(0, "")

    @classmethod
    def open(cls, path: str | Path) -> "Bundle":
        return cls(Path(path).read_bytes(), str(path))

    def _name(self, offset: int) -> str:
        (length,) = struct.unpack_from(">H", self.blob, self.names + offset)
        start = self.names + offset + 6  # past the length and the hash
        return self.blob[start:start + 2 * length].decode("utf-16-be")

    def _walk(self, index: int, prefix: str, depth: int = 0) -> None:
        if depth > 64:  # a corrupt bundle could point a directory at itself
            raise ValueError(f"{self.source}: directory tree deeper than 64 levels")
        at = self.tree + index * self.node_size
        flags, count, first = struct.unpack_from(">HII", self.blob, at + 4)
        if not flags & DIRECTORY:
            raise ValueError(f"{self.source}: node {index} is not a directory")
        for child in range(first, first + count):
            c_at = self.tree + child * self.node_size
            name_offset, c_flags = struct.unpack_from(">IH", self.blob, c_at)
            path = prefix + self._name(name_offset)
            if c_flags & DIRECTORY:
                self._walk(child, path + "/", depth + 1)
            else:
                (data_offset,) = struct.unpack_from(">I", self.blob, c_at + 10)
                self.entries[path] = Entry(path, c_flags, data_offset)

    def paths(self) -> list[str]:
        return sorted(self.entries)

    def read(self, path: str) -> bytes:
        entry = self.entries[path.lstrip("/")]
        at = self.data + entry.data_offset
        (length,) = struct.unpack_from(">I", self.blob, at)
        raw = self.blob[at + 4:at + 4 + length]
        if entry.flags & ZLIB:
            (size,) = struct.unpack_from(">I", raw)  # qCompress's prefix
            out = zlib.decompress(raw[4:])
            if len(out) != size:
                raise ValueError(f"{self.source}:{path}: {len(out)} bytes unpacked, header says {size}")
            return out
        if entry.flags & ZSTD:
            return _unzstd(raw, f"{self.source}:{path}")
        return raw


def _unzstd(raw: bytes, where: str) -> bytes:
    # Qt 6 may store entries as zstd frames; the standard library has no zstd before Python 3.14.
    try:
        from compression import zstd  # Python 3.14+
        return zstd.decompress(raw)
    except ImportError:
        pass
    try:
        import zstandard
    except ImportError:
        raise ValueError(f"{where} is zstd-compressed: pip install zstandard") from None
    return zstandard.ZstdDecompressor().decompressobj().decompress(raw)


def extract(bundle: str | Path, out: str | Path) -> list[Path]:
    """Write every entry of `bundle` under `out`, keeping its folders; return the files written."""
    parsed, out, written = Bundle.open(bundle), Path(out), []
    for path in parsed.paths():
        target = (out / path).resolve()
        if out.resolve() not in target.parents:  # a name like '..' must not escape the folder
            raise ValueError(f"{bundle}: entry {path!r} points outside the output folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(parsed.read(path))
        written.append(target)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("--out", help="extract every entry into this folder (default: list them)")
    args = parser.parse_args(argv)
    try:
        if args.out:
            print(f"{len(extract(args.bundle, args.out))} files -> {args.out}")
        else:
            bundle = Bundle.open(args.bundle)
            for path in bundle.paths():
                flags = bundle.entries[path].flags
                kind = "zlib" if flags & ZLIB else "zstd" if flags & ZSTD else "plain"
                print(f"{kind:5s} {path}")
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
