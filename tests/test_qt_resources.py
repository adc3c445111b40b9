"""bench/qt_resources.py reads Qt resource bundles (.rcc) that the test writes by hand, following Qt's
format (src/tools/rcc/rcc.cpp), and bench/paintings.py puts cut pieces back where a board says."""
import importlib.util
import io
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load(name):
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    sys.path.insert(0, str(BENCH))  # paintings.py imports qt_resources as its bench neighbour
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


qt = load("qt_resources")


def qt_hash(name):  # Qt's qt_hash, written out again from qhash.cpp for the writer
    h = 0
    for ch in name:
        h = (h << 4) + ord(ch)
        h ^= (h & 0xF0000000) >> 23
        h &= 0x0FFFFFFF
    return h


def write_rcc(files, compressed=(), version=2):
    """A minimal `rcc -binary`: breadth-first tree, children sorted by name hash, qCompress'd entries."""
    tree = {}
    for path in files:
        node = tree
        *folders, leaf = path.split("/")
        for folder in folders:
            node = node.setdefault(folder, {})
        node[leaf] = path
    nodes, first_child, i = [("", tree)], {}, 0
    while i < len(nodes):
        if isinstance(nodes[i][1], dict):
            children = sorted(nodes[i][1].items(), key=lambda kv: qt_hash(kv[0]))
            first_child[i] = (len(children), len(nodes))
            nodes.extend(children)
        i += 1
    names, data, name_at, records = bytearray(), bytearray(), {}, bytearray()
    for index, (name, content) in enumerate(nodes):
        if name and name not in name_at:
            name_at[name] = len(names)
            names += struct.pack(">HI", len(name), qt_hash(name)) + name.encode("utf-16-be")
        offset = name_at.get(name, 0)
        if isinstance(content, dict):
            count, first = first_child[index]
            records += struct.pack(">IHII", offset, 0x02, count, first)
        else:
            raw = files[content]
            payload = struct.pack(">I", len(raw)) + zlib.compress(raw) if content in compressed else raw
            records += struct.pack(">IHHHI", offset, 0x01 if content in compressed else 0, 0, 0, len(data))
            data += struct.pack(">I", len(payload)) + payload
        if version >= 2:
            records += struct.pack(">Q", 1_700_000_000_000 + index)  # last modified, ms
    header = 20 + (4 if version >= 3 else 0)
    data_at, names_at = header, header + len(data)
    tree_at = names_at + len(names)
    head = b"qres" + struct.pack(">IIII", version, tree_at, data_at, names_at)
    if version >= 3:
        head += struct.pack(">I", 1 if compressed else 0)  # the bundle's compression flags
    return head + bytes(data) + bytes(names) + bytes(records)


FILES = {
    "gcompris/src/activities/demo/resource/board/board1_0.qml": 40 * 'QtObject { name: "café" }\n'.encode(),
    "gcompris/src/activities/demo/resource/image/piece.webp": bytes(range(256)) * 3,
    "gcompris/src/activities/other/README": b"plain text\n",
    "top.txt": b"",
}
SQUEEZED = {"gcompris/src/activities/demo/resource/board/board1_0.qml"}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_a_hand_written_bundle_reads_back_byte_for_byte(version):
    blob = write_rcc(FILES, SQUEEZED, version)
    bundle = qt.Bundle(blob)
    assert bundle.version == version and bundle.paths() == sorted(FILES)
    for path, raw in FILES.items():
        assert bundle.read(path) == raw
    board = bundle.entries["gcompris/src/activities/demo/resource/board/board1_0.qml"]
    assert board.flags & qt.ZLIB and FILES[board.path] not in blob  # stored compressed, read back whole


def test_extract_writes_the_folders_and_files(tmp_path):
    rcc = tmp_path / "demo.rcc"
    rcc.write_bytes(write_rcc(FILES, SQUEEZED, version=3))
    written = qt.extract(rcc, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == sorted(FILES)
    for path, raw in FILES.items():
        assert (tmp_path / "out" / path).read_bytes() == raw


def test_qt_hash_matches_qts_formula_and_bad_input_is_refused():
    for name in ["a", "ab", "board10_0.qml", "GreatWave_a1.webp", "é" * 20]:
        assert qt.qt_hash(name) == qt_hash(name)
    assert qt.qt_hash("ab") == (0x61 << 4) + 0x62
    with pytest.raises(ValueError, match="not a Qt resource bundle"):
        qt.Bundle(b"PK\x03\x04" + bytes(40))
    blob = bytearray(write_rcc(FILES, SQUEEZED))
    blob[4:8] = struct.pack(">I", 9)
    with pytest.raises(ValueError, match="version 9"):
        qt.Bundle(bytes(blob))


def test_cli_lists_entries_and_their_storage(tmp_path, capsys):
    rcc = tmp_path / "demo.rcc"
    rcc.write_bytes(write_rcc(FILES, SQUEEZED))
    assert qt.main([str(rcc)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "zlib  gcompris/src/activities/demo/resource/board/board1_0.qml" in lines and "plain top.txt" in lines
    assert qt.main([str(tmp_path / "missing.rcc")]) == 1
    assert capsys.readouterr().err.startswith("error:")


def test_cut_pieces_go_back_where_the_board_says():
    """Cut a random picture into two jigsaw-like pieces with transparent margins; the board gives
    each piece's centre as fractions of a larger empty board, as GCompris's paintings boards do."""
    from PIL import Image

    paintings = load("paintings")
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    board_w, board_h, at = 100, 80, (17, 23)  # the picture's top-left corner on the board
    pieces, levels = {}, [{"pixmapfile": "image/bg.svg", "type": "SHAPE_BACKGROUND_IMAGE",
                           "width": str(board_w), "height": str(board_h)}]
    for name, (x0, x1) in {"left": (0, 35), "right": (30, 60)}.items():  # they overlap by 5 columns
        rgba = np.zeros((44, x1 - x0 + 3, 4), np.uint8)  # 2 px transparent margin top, 1 px left
        rgba[2:42, 1:1 + x1 - x0, :3] = picture[:, x0:x1]
        rgba[2:42, 1:1 + x1 - x0, 3] = 255
        pieces[f"image/{name}.webp"] = Image.fromarray(rgba)
        left, top = at[0] + x0 - 1, at[1] - 2
        levels.append({"pixmapfile": f"image/{name}.webp", "x": str((left + rgba.shape[1] / 2) / board_w),
                       "y": str((top + rgba.shape[0] / 2) / board_h)})
    text = ('QtObject {\n property string instruction: qsTr("Someone, A Test - 2024")\n property var levels : [\n'
            + ",\n".join("{" + ", ".join(f'"{k}" : "{v}"' if k != "width" and k != "height" else f'"{k}": {v}'
                                         for k, v in level.items()) + "}" for level in levels) + "\n ]\n}\n")
    caption, parsed = paintings.parse_board(text)
    assert caption == "Someone, A Test - 2024" and parsed == levels
    image, checks = paintings.assemble(parsed, lambda name: pieces[name])
    assert np.array_equal(np.asarray(image), picture)
    assert checks["uncovered"] == 0 and checks["overlap"] == pytest.approx(5 / 60, abs=1e-4)
    shifted = [dict(level, x=str(float(level["x"]) + 1 / board_w)) if "right" in level["pixmapfile"] else level
               for level in parsed]
    assert not np.array_equal(np.asarray(paintings.assemble(shifted, lambda name: pieces[name])[0]), picture)
