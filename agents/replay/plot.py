"""Reliability diagrams as PNG, with numpy and zlib only (no plotting library to install).

One panel per strategy: for each confidence bin (``offline.calibration_bins``)
a bar up to the bin's accuracy, over the bin's confidence range; the diagonal
is perfect calibration; the red band of a bin is the gap between its accuracy
and its mean confidence, drawn translucent over the bar, with a red line at the
mean confidence (the ECE is those gaps weighted by the bins' shares).
The title line gives the strategy, its ECE and its number of decisions.

A PNG is a signature and three chunks (IHDR, IDAT with the zlib-compressed
rows, each prefixed by filter byte 0, and IEND), each chunk with its CRC-32
(PNG specification, ISO/IEC 15948). Text uses a built-in 3x5 pixel font.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from swarmstream.agents.replay.offline import CalibrationBin

PANEL_PX = 220
PLOT_PX = 170
MARGIN_PX = 28
COLUMNS = 3
SCALE = 2  # font pixel size

WHITE = (255, 255, 255)
BLACK = (20, 20, 20)
GREY = (170, 170, 170)
BLUE = (66, 120, 200)
RED = (220, 70, 60)

# 3x5 glyphs, one string of 15 bits (rows top to bottom) per character.
_FONT_ROWS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001010010010",
    "8": "111101111101111", "9": "111101111001111", "a": "010101111101101", "b": "110101110101110",
    "c": "011100100100011", "d": "110101101101110", "e": "111100110100111", "f": "111100110100100",
    "g": "011100101101011", "h": "101101111101101", "i": "111010010010111", "j": "001001001101010",
    "k": "101101110101101", "l": "100100100100111", "m": "101111111101101", "n": "110101101101101",
    "o": "010101101101010", "p": "110101110100100", "q": "010101101110011", "r": "110101110101101",
    "s": "011100010001110", "t": "111010010010010", "u": "101101101101111", "v": "101101101101010",
    "w": "101101111111101", "x": "101101010101101", "y": "101101010010010", "z": "111001010100111",
    ".": "000000000000010", "_": "000000000000111", "-": "000000111000000", ":": "000010000010000",
    "=": "000111000111000", "/": "001001010100100", "(": "010100100100010", ")": "010001001001010",
    " ": "000000000000000", "%": "101001010100101", ",": "000000000010100", "+": "000010111010000",
}


def _text(img: np.ndarray, x: int, y: int, text: str, color: tuple[int, int, int] = BLACK) -> None:
    for i, ch in enumerate(text.lower()):
        bits = _FONT_ROWS.get(ch, _FONT_ROWS[" "])
        for k, bit in enumerate(bits):
            if bit == "1":
                px, py = x + (i * 4 + k % 3) * SCALE, y + (k // 3) * SCALE
                img[py:py + SCALE, px:px + SCALE] = color


def _rect(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, color: tuple[int, int, int]) -> None:
    img[max(0, min(y0, y1)):max(y0, y1), max(0, min(x0, x1)):max(x0, x1)] = color


def _panel(img: np.ndarray, left: int, top: int, name: str, bins: Sequence[CalibrationBin],
           ece: float | None) -> None:
    ox, oy = left + MARGIN_PX, top + MARGIN_PX  # plot's top-left
    bottom = oy + PLOT_PX
    n = sum(b.count for b in bins)
    _text(img, left + 4, top + 6, name[:24])
    _text(img, left + 4, top + 6 + 6 * SCALE, f"ece {'-' if ece is None else f'{ece:.3f}'}  n {n}")
    for b in bins:
        x0, x1 = ox + round(b.low * PLOT_PX) + 1, ox + round(b.high * PLOT_PX) - 1
        acc_y = bottom - round(b.accuracy * PLOT_PX)
        conf_y = bottom - round(b.mean_confidence * PLOT_PX)
        _rect(img, x0, acc_y, x1, bottom, BLUE)
        gap = img[min(acc_y, conf_y):max(acc_y, conf_y), x0:x1]  # translucent: the bar stays visible under it
        gap[:] = (gap.astype(np.uint16) + np.array(RED, dtype=np.uint16)) // 2
        _rect(img, x0, conf_y - 1, x1, conf_y + 1, RED)  # the bin's mean confidence
    for i in range(PLOT_PX):  # the diagonal: perfect calibration
        img[bottom - i - 1, ox + i] = GREY
    _rect(img, ox, oy, ox + PLOT_PX, oy + 1, BLACK)
    _rect(img, ox, bottom - 1, ox + PLOT_PX, bottom, BLACK)
    _rect(img, ox, oy, ox + 1, bottom, BLACK)
    _rect(img, ox + PLOT_PX - 1, oy, ox + PLOT_PX, bottom, BLACK)
    _text(img, ox - 4 * SCALE, bottom - 5 * SCALE, "0")
    _text(img, ox - 4 * SCALE, oy, "1")
    _text(img, ox + PLOT_PX - 3 * SCALE, bottom + 3, "1")
    _text(img, ox + PLOT_PX // 2 - 20 * SCALE, bottom + 3, "confidence")


def reliability_image(panels: Mapping[str, tuple[Sequence[CalibrationBin], float | None]]) -> np.ndarray:
    """An RGB image (height x width x 3, uint8) with one panel per strategy: name -> (bins, ece)."""
    count = max(1, len(panels))
    columns = min(COLUMNS, count)
    rows = -(-count // columns)
    img = np.full((rows * PANEL_PX, columns * PANEL_PX, 3), 255, dtype=np.uint8)
    for i, (name, (bins, ece)) in enumerate(panels.items()):
        _panel(img, (i % columns) * PANEL_PX, (i // columns) * PANEL_PX, name, bins, ece)
    return img


def png_bytes(img: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of ``img`` (height x width x 3, uint8)."""
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"png_bytes: expected a height x width x 3 uint8 array, got {img.shape} {img.dtype}")
    height, width, _ = img.shape
    rows = np.concatenate([np.zeros((height, 1), dtype=np.uint8), img.reshape(height, width * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit, colour type 2 (RGB)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
            + chunk(b"IEND", b""))


def write_reliability_png(path: str | Path,
                          panels: Mapping[str, tuple[Sequence[CalibrationBin], float | None]]) -> Path:
    """Write the reliability diagram of ``panels`` (name -> (bins, ece)) to ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(png_bytes(reliability_image(panels)))
    return target
