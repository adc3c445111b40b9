"""Render a run's report.html in headless Chromium at desktop and phone widths, to look at.

    python bench/report_screenshots.py runs/RUN/report.html --out bench/outputs/report
    # -> report_desktop.png (1280 px wide) and report_phone.png (390 px wide), full page height

Needs Debian's `chromium` (apt-get install chromium). Chromium's --screenshot takes the window size
as the page size, so the height is generous; the page has no script and no network access.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

WIDTHS = {"desktop": (1280, 4200), "phone": (390, 9000)}


def screenshot(html: Path, png: Path, width: int, height: int) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    scale = "2" if width < 600 else "1"  # a phone's pixel density, so text is legible in the image
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--force-device-scale-factor={scale}", f"--window-size={width},{height}",
                    f"--screenshot={png.resolve()}", html.resolve().as_uri()],
                   check=True, capture_output=True, timeout=120)
    _trim(png)


def _trim(png: Path) -> None:
    """Cut the blank space below the page (the window is taller than most pages)."""
    import numpy as np
    from PIL import Image

    img = Image.open(png).convert("RGB")
    pixels = np.asarray(img)
    rows = np.flatnonzero((np.abs(pixels.astype(int) - pixels[-1:].astype(int)).sum(axis=(1, 2))) > 0)
    if len(rows):
        img.crop((0, 0, img.width, min(img.height, int(rows[-1]) + 40))).save(png, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/outputs/report"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (w, h) in WIDTHS.items():
        png = args.out / f"report_{name}.png"
        screenshot(args.html, png, w, h)
        print(png)


if __name__ == "__main__":
    main()
