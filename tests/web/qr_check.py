"""The QR code a page draws for a SMART Health Link, checked two independent ways: the
screenshot of the drawn code is decoded by zxing-cpp (a C++ reader, PyPI wheels) back to the
link, as a QR Code (not Micro QR) with error correction M or higher; and the code's modules
(the SVG path's 1x1 runs) are a symbol of the size segno gives the same link as
``kizuna patient share`` makes it (``segno.make(uri, error="m")``): the same version. The
modules themselves are not compared: lean-qr and segno choose masks differently (both valid
QR symbols of the same bytes)."""

from __future__ import annotations

import io
import re

import segno
import zxingcpp
from PIL import Image
from playwright.sync_api import Locator

RUN = re.compile(r"M(\d+) (\d+)h(\d+)v1h-\d+z")


def page_matrix(svg: Locator) -> list[list[bool]]:
    """The dark modules of the drawn code, from its path (quiet zone excluded)."""
    box = svg.get_attribute("viewBox") or ""
    side = int(box.split()[2]) - 8  # 4 modules of quiet zone each side
    path = svg.locator("path").get_attribute("d") or ""
    matrix = [[False] * side for _ in range(side)]
    consumed = 0
    for m in RUN.finditer(path):
        x, y, run = int(m[1]), int(m[2]), int(m[3])
        for i in range(run):
            matrix[y][x + i] = True
        consumed += len(m[0])
    assert consumed == len(path), "the QR path holds something other than module runs"
    return matrix


def cli_matrix(uri: str) -> list[list[bool]]:
    code = segno.make(uri, error="m")
    return [[bool(v) for v in row] for row in code.matrix]


def check_qr(svg: Locator, uri: str) -> None:
    """The drawn code decodes to ``uri`` and has the size of the CLI's symbol of it."""
    shot = Image.open(io.BytesIO(svg.screenshot()))
    # Two-dimensional symbols only: a QR code's rows of modules can also read as a linear
    # barcode (a "C5$A" was once found beside the link, at phone width), which says nothing
    # about the code the page drew. A Micro QR or another matrix symbol is still found, and
    # refused below.
    found = zxingcpp.read_barcodes(shot, formats=zxingcpp.BarcodeFormat.AllMatrix)
    assert [b.text for b in found] == [uri], [b.text for b in found]
    assert found[0].format == zxingcpp.BarcodeFormat.QRCode
    assert found[0].ec_level in ("M", "Q", "H"), found[0].ec_level
    drawn = page_matrix(svg)
    assert sum(map(sum, drawn)) > len(drawn) ** 2 // 4, "the drawn path lost modules"
    expected = cli_matrix(uri)
    assert len(drawn) == len(expected), (
        f"version differs: {len(drawn)} modules a side in the page, {len(expected)} in the CLI")
