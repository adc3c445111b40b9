"""Write a style set of 35 famous public-domain paintings, taken from Debian packages, into one folder.

    apt-get install gcompris-qt-data opencv-doc
    python bench/paintings.py /tmp/style_data                                      # -> styles/, styles.json
    python bench/paintings.py /tmp/style_data --sheet bench/outputs/style_set.jpg  # and a contact sheet

styles/NAME.jpg (snake_case names: starry_night, great_wave, composition_viii, night_cafe, ...) at the
size the package ships (300-725 px a side; nothing is resized), JPEG quality 95; styles.json lists
each one's name, title, artist, year, source package and file, size and how well its pieces fit.

Where they come from:
- Van Gogh's The Starry Night: opencv-doc's examples/data/starry_night.jpg (752x600), less 14 px
  each side: the scan's black border (8-12 px) and the canvas's light edge.
- GCompris's Qt resource bundles (/usr/share/gcompris-qt/rcc/*.rcc, read by bench/qt_resources.py):
  details.rcc holds eight whole Van Gogh paintings (the activity's backgrounds; its pieces are
  copies of details of them); paintings.rcc cuts 21 paintings into jigsaw pieces on an empty
  702x515 board, and babyshapes.rcc cuts figures out of five more, leaving white holes in the
  background. A board file (QML) lists each piece with the centre of its place as fractions of the
  board (GCompris's Babymatch.qml: x = posX * width - pieceWidth / 2, at the piece's own size), so
  pasting every piece there rebuilds the painting. paintings.rcc's Michelangelo Pieta is a photo
  of a sculpture and is left out.
How well the pieces fit (styles.json "checks"): for the cut paintings, the share of the picture
no piece covers ("uncovered") and the share two pieces cover ("overlap"), both before the ragged
1-4 px rim is trimmed and any pixel left is filled from its neighbours; for details.rcc, the mean
absolute difference (0-255) between each detail piece and the painting under it, worst piece
("copy_error"; WebP's own noise is about 4, a piece one pixel off gives far more).
"""
from __future__ import annotations

import argparse
import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # runs from a checkout: bench/ is not a package
from qt_resources import Bundle  # noqa: E402

RCC = Path("/usr/share/gcompris-qt/rcc")
STARRY = Path("/usr/share/doc/opencv-doc/examples/data/starry_night.jpg")
PACKAGES = {"gcompris-qt-data": RCC / "paintings.rcc", "opencv-doc": STARRY}


@dataclass(frozen=True)
class Painting:
    """One style image: where it is (a GCompris bundle and board, or a plain file) and what it is."""

    name: str
    title: str
    artist: str
    year: str
    bundle: str = ""  # details, paintings or babyshapes (.rcc); empty for a plain file
    board: str = ""  # the board file in that activity's resource/board/
    file: str = ""
    margin: int = 0  # px cut off each side of a plain file (a scan's frame)


VAN_GOGH, HOKUSAI, HIROSHIGE = "Vincent van Gogh", "Katsushika Hokusai", "Utagawa Hiroshige"
CATALOGUE = (
    Painting("starry_night", "The Starry Night", VAN_GOGH, "1889", file=str(STARRY), margin=14),
    Painting("saint_paul_hospital", "Entrance Hall of Saint-Paul Hospital", VAN_GOGH, "1889", "details",
             "board1_0.qml"),
    Painting("langlois_bridge", "The Langlois Bridge at Arles with a Lady with Umbrella", VAN_GOGH, "1888", "details",
             "board2_0.qml"),
    Painting("church_auvers", "The Church at Auvers", VAN_GOGH, "1890", "details", "board3_0.qml"),
    Painting("painter_on_the_road", "The Painter on His Way to Work", VAN_GOGH, "1888", "details", "board4_0.qml"),
    Painting("harvest_la_crau", "The Harvest (Harvest at La Crau)", VAN_GOGH, "1888", "details", "board5_0.qml"),
    Painting("cafe_terrace", "Café Terrace at Night", VAN_GOGH, "1888", "details", "board6_0.qml"),
    Painting("night_cafe", "The Night Café", VAN_GOGH, "1888", "details", "board7_0.qml"),
    Painting("pere_tanguy", "Portrait of Père Tanguy", VAN_GOGH, "1887", "details", "board8_0.qml"),
    Painting("moulin_de_la_galette", "Bal du moulin de la Galette", "Pierre-Auguste Renoir", "1876", "paintings",
             "board1_0.qml"),
    Painting("arcimboldo_spring", "Spring", "Giuseppe Arcimboldo", "1573", "paintings", "board2_0.qml"),
    Painting("librarian", "The Librarian", "Giuseppe Arcimboldo", "1566", "paintings", "board3_0.qml"),
    Painting("oiran_kamuro", "Oiran and Kamuro", HOKUSAI, "", "paintings", "board4_0.qml"),
    Painting("woman_with_fan", "Woman Holding a Fan", HOKUSAI, "", "paintings", "board5_0.qml"),
    Painting("ejiri_suruga", "Ejiri in Suruga Province", HOKUSAI, "1830-1832", "paintings", "board6_0.qml"),
    Painting("great_wave", "The Great Wave off Kanagawa", HOKUSAI, "1831", "paintings", "board7_0.qml"),
    Painting("inokashira_snow", "The Benzaiten Shrine at Inokashira in Snow", HIROSHIGE, "", "paintings",
             "board8_0.qml"),
    Painting("mackerel_and_prawn", "Horse Mackerel and Prawn", HIROSHIGE, "1840", "paintings", "board9_0.qml"),
    Painting("ryogoku_sunset", "Sunset over Ryogoku Bridge from the Onmaya Embankment", HOKUSAI, "1830", "paintings",
             "board10_0.qml"),
    Painting("poppies", "Poppies", HOKUSAI, "1833-1834", "paintings", "board11_0.qml"),
    Painting("kazusa_sea_route", "The Kazusa Sea Route", HOKUSAI, "1830", "paintings", "board12_0.qml"),
    Painting("mona_lisa", "Mona Lisa", "Leonardo da Vinci", "1503-1519", "paintings", "board14_0.qml"),
    Painting("pesaro_altarpiece", "Pesaro Altarpiece (the landscape in it)", "Giovanni Bellini", "1475-1485",
             "paintings", "board15_0.qml"),
    Painting("durer_lion", "Lion", "Albrecht Dürer", "1494", "paintings", "board16_0.qml"),
    Painting("harvesters", "The Harvesters", "Pieter Bruegel the Elder", "1565", "paintings", "board17_0.qml"),
    Painting("girls_at_the_piano", "Girls at the Piano", "Pierre-Auguste Renoir", "1892", "paintings",
             "board18_0.qml"),
    Painting("composition_viii", "Composition VIII", "Wassily Kandinsky", "1923", "paintings", "board19_0.qml"),
    Painting("ramparts_aigues_mortes", "The Ramparts at Aigues-Mortes", "Frédéric Bazille", "1867", "paintings",
             "board20_0.qml"),
    Painting("summertime", "Summertime", "Mary Cassatt", "1894", "paintings", "board21_0.qml"),
    Painting("village_street_auvers", "Village Street in Auvers", VAN_GOGH, "1890", "paintings", "board22_0.qml"),
    Painting("arearea", "Arearea", "Paul Gauguin", "1892", "babyshapes", "board7_0.qml"),
    Painting("peasant_wedding", "The Peasant Wedding", "Pieter Bruegel the Elder", "1568", "babyshapes",
             "board7_1.qml"),
    Painting("lady_and_unicorn", "The Lady and the Unicorn (tapestry)", "unknown", "c. 1500", "babyshapes",
             "board7_2.qml"),
    Painting("bedroom_in_arles", "Bedroom in Arles", VAN_GOGH, "1888", "babyshapes", "board7_3.qml"),
    Painting("flower_still_life", "Flower Still Life", "Ambrosius Bosschaert the Elder", "1614", "babyshapes",
             "board7_4.qml"),
)

# One level of a board: {"pixmapfile": "image/x.webp", "x": "0.5", ...}; values quoted or bare numbers.
_PAIR = re.compile(r'"(\w+)"\s*:\s*("([^"]*)"|[-+0-9.eE]+)')


def parse_board(text: str) -> tuple[str, list[dict]]:
    """A GCompris board file's caption (its qsTr instruction) and its levels, one dict per object."""
    caption = re.search(r'instruction\s*:\s*qsTr\("(.*?)"\)', text)
    levels = []
    for body in re.findall(r"\{([^{}]*)\}", text[text.index("levels"):]):
        levels.append({key: quoted if quoted or raw.startswith('"') else raw
                       for key, raw, quoted in _PAIR.findall(body)})
    return (caption.group(1) if caption else ""), levels


def assemble(levels: list[dict], load, paste_pieces: bool = True):
    """Rebuild a board's picture: its background (or an empty board of its width x height), every
    piece pasted with its centre at (x * width, y * height) at its own size, cropped to what is
    covered. `load(pixmapfile)` returns a PIL image. Returns (RGB image, checks): checks says how
    well the pieces fit (see `fit_checks`)."""
    import numpy as np
    from PIL import Image

    background = next(level for level in levels if level.get("type") == "SHAPE_BACKGROUND_IMAGE")
    if background["pixmapfile"].endswith(".svg"):  # an empty board: GCompris's bg.svg is a plain frame
        canvas = Image.new("RGBA", (int(float(background["width"])), int(float(background["height"]))))
    else:
        canvas = load(background["pixmapfile"]).convert("RGBA")
    original = np.asarray(canvas).astype(np.float32)
    layers = np.zeros(original.shape[:2], np.int32)
    if paste_pieces:  # the background covers what is painted on it; white (>= 240) is a hole
        layers += (original[..., 3] > 0) & (original[..., :3].min(axis=-1) < 240)
    copy_errors = []
    for level in levels:
        if level is background or "x" not in level:
            continue
        piece = load(level["pixmapfile"]).convert("RGBA")
        # Cut-out figures have a half-transparent rim that would let the background's white hole
        # show through as a light outline: paste every piece opaque wherever it is not empty.
        piece.putalpha(piece.getchannel("A").point(lambda a: 255 if a else 0))
        left = round(float(level["x"]) * canvas.width - piece.width / 2)
        top = round(float(level["y"]) * canvas.height - piece.height / 2)
        window = (slice(max(top, 0), top + piece.height), slice(max(left, 0), left + piece.width))
        p = np.asarray(piece).astype(np.float32)[max(-top, 0):, max(-left, 0):]
        p = p[:layers[window].shape[0], :layers[window].shape[1]]
        if paste_pieces:
            layers[window] += p[..., 3] > 0
            canvas.alpha_composite(piece, (left, top))
        else:
            under = original[window]
            copy_errors.append(float(np.abs(under[..., :3] - p[..., :3])[p[..., 3] > 0].mean()))
    box = canvas.getchannel("A").getbbox()
    inside = layers[box[1]:box[3], box[0]:box[2]]
    checks = ({"copy_error": round(max(copy_errors), 2)} if copy_errors else {}) if not paste_pieces else {
        "uncovered": round(float((inside == 0).mean()), 5), "overlap": round(float((inside > 1).mean()), 5)}
    return _fill(_trim(canvas.crop(box))), checks


def _trim(canvas, limit: int = 4):
    """Shave up to `limit` px off each ragged side that still has gaps (jigsaw edges, rounding)."""
    import numpy as np

    alpha = np.asarray(canvas.getchannel("A")) > 0
    top, left, bottom, right = 0, 0, alpha.shape[0], alpha.shape[1]
    for _ in range(limit):
        if not alpha[top, left:right].all():
            top += 1
        if not alpha[bottom - 1, left:right].all():
            bottom -= 1
        if not alpha[top:bottom, left].all():
            left += 1
        if not alpha[top:bottom, right - 1].all():
            right -= 1
    return canvas.crop((left, top, right, bottom))


def _fill(canvas):
    """RGB with any pixel no piece covered filled from its covered neighbours, ring by ring."""
    import numpy as np
    from PIL import Image

    rgba = np.asarray(canvas).astype(np.float32)
    covered = rgba[..., 3] > 0
    rgb = rgba[..., :3] * covered[..., None]

    def neighbours(a):  # the sum over each pixel's 3x3 neighbourhood
        padded = np.pad(a, [(1, 1), (1, 1)] + [(0, 0)] * (a.ndim - 2))
        return sum(padded[i:i + a.shape[0], j:j + a.shape[1]] for i in range(3) for j in range(3))

    while not covered.all():
        weight = neighbours(covered.astype(np.float32))
        reached = ~covered & (weight > 0)
        rgb[reached] = (neighbours(rgb)[reached] / weight[reached][:, None])
        covered = covered | reached
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


def read_painting(painting: Painting, bundles: dict):
    """(RGB image, caption, source file, fit checks) for one catalogue entry."""
    from PIL import Image

    if painting.file:
        image = Image.open(painting.file).convert("RGB")
        m = painting.margin
        return image.crop((m, m, image.width - m, image.height - m)), "", painting.file, {}
    path = RCC / f"{painting.bundle}.rcc"
    if path not in bundles:
        bundles[path] = Bundle.open(path)
    bundle = bundles[path]
    root = f"gcompris/src/activities/{painting.bundle}/resource/"
    caption, levels = parse_board(bundle.read(root + "board/" + painting.board).decode("utf-8"))
    # details' pieces are copies of parts of a whole background: they are only checked, not pasted.
    image, checks = assemble(levels, lambda name: Image.open(io.BytesIO(bundle.read(root + name))),
                            paste_pieces=painting.bundle != "details")
    return image, caption, f"{path}:{root}board/{painting.board}", checks


def contact_sheet(entries: list[dict], folder: Path, out: Path, cell: int = 180) -> None:
    """A grid of every style with its name under it, saved as a JPEG small enough to commit."""
    from PIL import Image, ImageDraw

    columns = 7
    rows = -(-len(entries) // columns)
    sheet = Image.new("RGB", (columns * cell, rows * (cell + 14)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, entry in enumerate(entries):
        image = Image.open(folder / f"{entry['name']}.jpg")
        image.thumbnail((cell - 6, cell - 6))
        x, y = (i % columns) * cell, (i // columns) * (cell + 14)
        sheet.paste(image, (x + (cell - image.width) // 2, y + (cell - image.height) // 2))
        draw.text((x + 3, y + cell), entry["name"], fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=75)


def missing_packages(needed: dict) -> list[str]:
    """The Debian packages (of {package: a file it installs}) that are not installed."""
    return [package for package, marker in needed.items() if not Path(marker).exists()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", default="/tmp/style_data")
    parser.add_argument("--sheet", help="also write a contact sheet of every style here (JPEG)")
    args = parser.parse_args(argv)
    missing = missing_packages(PACKAGES)
    if missing:
        for package in missing:
            print(f"apt-get install {package}", file=sys.stderr)
        return 1
    out = Path(args.out)
    (out / "styles").mkdir(parents=True, exist_ok=True)
    bundles, entries = {}, []
    for painting in CATALOGUE:
        image, caption, source, checks = read_painting(painting, bundles)
        image.save(out / "styles" / f"{painting.name}.jpg", quality=95)
        entries.append({"name": painting.name, "title": painting.title, "artist": painting.artist,
                        "year": painting.year, "package": "opencv-doc" if painting.file else "gcompris-qt-data",
                        "file": source, "caption": caption, "size": list(image.size),
                        "checks": checks})
        print(f"{painting.name:24s} {image.width:4d}x{image.height:<4d} {checks}")
    (out / "styles.json").write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.sheet:
        contact_sheet(entries, out / "styles", Path(args.sheet))
    print(f"{out}: {len(entries)} styles in styles/, listed in styles.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
