"""Draw docs/carm_conventions.png: the two C-arm angle conventions for one prone needle.

Run ``python docs/carm_conventions.py``. The detector is placed with `planning.carm` (the
bull's-eye view of a left needle 15° medial, prone), so the figure shows what the program
computes; the two angle scales are drawn from their definitions.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from planning.carm import working_views
from planning.plan import Side, Trajectory

OUT = Path(__file__).with_name("carm_conventions.png")
W, H = 1400, 860
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(BOLD if bold else FONT, size)


def panel(draw: ImageDraw.ImageDraw, ox: int, title: str, zero_up: bool, sign: int,
          note: str, reading: str) -> None:
    """One axial picture seen from the feet, prone patient: back up, the patient's left on
    the viewer's left. ``zero_up``: where 0° is (table: ceiling; DICOM: the chest, i.e. down
    for a prone patient); ``sign``: −1 turns +90° (LAO) clockwise on screen from 0°."""
    cx, cy, r = ox + 350, 420, 190
    draw.text((ox + 20, 20), title, fill="black", font=font(26, bold=True))
    draw.text((ox + 20, 58), note, fill=(70, 70, 70), font=font(17))
    # table, body (prone: back up), spine, needle
    draw.rectangle((cx - 260, cy + 120, cx + 260, cy + 140), fill=(150, 150, 150))
    draw.text((cx - 30, cy + 142), "table", fill=(90, 90, 90), font=font(16))
    draw.ellipse((cx - 200, cy - 110, cx + 200, cy + 118), fill=(244, 222, 205),
                 outline=(160, 120, 100), width=3)
    draw.ellipse((cx - 38, cy - 70, cx + 38, cy + 4), fill=(250, 250, 240), outline="black")
    draw.ellipse((cx - 14, cy - 96, cx + 14, cy - 70), fill=(120, 170, 230))  # canal, behind
    draw.text((cx - 60, cy + 70), "chest", fill=(120, 80, 60), font=font(16))
    draw.text((cx - 40, cy - 140), "back", fill=(120, 80, 60), font=font(16))
    draw.text((cx - 245, cy - 10), "L", fill=(0, 90, 200), font=font(30, bold=True))
    draw.text((cx + 222, cy - 10), "R", fill=(0, 90, 200), font=font(30, bold=True))
    m = math.radians(15)  # left needle, entry at the back on the patient's left
    entry = (cx - 55, cy - 120)
    tip = (entry[0] + 118 * math.sin(m), entry[1] + 118 * math.cos(m))
    draw.line((entry, tip), fill=(30, 160, 60), width=6)
    # the angle scale of this convention
    for deg in range(-180, 181, 30):
        a = math.radians(deg)
        base = -math.pi / 2 if zero_up else math.pi / 2  # screen angle of 0°
        screen = base - sign * a  # +90 towards the viewer's left when sign = +1
        x0, y0 = cx + (r + 50) * math.cos(screen), cy + (r + 50) * math.sin(screen)
        x1, y1 = cx + (r + 62) * math.cos(screen), cy + (r + 62) * math.sin(screen)
        draw.line((x0, y0, x1, y1), fill=(80, 80, 80), width=2)
        if deg % 90 == 0 and deg != -180:
            label = "0°" if deg == 0 else (f"LAO {deg}°" if deg > 0 else f"RAO {-deg}°")
            if abs(deg) == 180:
                label = "±180°"
            tx, ty = cx + (r + 92) * math.cos(screen), cy + (r + 92) * math.sin(screen)
            draw.text((tx, ty), label, fill=(80, 80, 80), font=font(16), anchor="mm")
    # the detector, from the program's own bull's-eye view (beam = patient → detector)
    needle = Trajectory("L2", Side.LEFT, (35.0, 60.0, 0.0),
                        (35.0 - 45 * math.sin(m), 60.0 - 45 * math.cos(m), 0.0))
    beam = working_views(needle, "prone")["bulls_eye"].beam_lps
    # LPS → screen (seen from the feet, prone): +x (left) → viewer's left, +y (back) → up
    d = np.array([-beam[0], -beam[1]])
    d /= np.linalg.norm(d)
    c = np.array([cx, cy]) + (r + 20) * d
    n = np.array([-d[1], d[0]])
    a, b = c + 60 * n, c - 60 * n
    draw.line((tuple(a), tuple(b)), fill=(200, 40, 40), width=12)
    draw.line(((cx, cy - 30), tuple(c - 10 * d)), fill=(200, 40, 40), width=2)
    draw.text((ox + 20, H - 150), reading, fill=(200, 40, 40), font=font(22, bold=True))


def main() -> None:
    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)
    view = working_views(Trajectory("L2", Side.LEFT, (35.0, 60.0, 0.0),
                                    (35.0 - 45 * math.sin(math.radians(15)),
                                     60.0 - 45 * math.cos(math.radians(15)), 0.0)),
                         "prone")["bulls_eye"]
    panel(draw, 0, "C-arm registered head-first supine",
          zero_up=True, sign=-1,
          note="0° = ceiling; LAO = the table's left (a prone patient's right)",
          reading=f"reads {view.table.label()}")
    panel(draw, 700, "DICOM, patient-referenced (C.8.7.5)",
          zero_up=False, sign=-1,
          note="0° = in front of the chest; LAO = the patient's left",
          reading=f"reads {view.patient.label()}")
    draw.line((700, 20, 700, H - 110), fill=(200, 200, 200), width=2)
    draw.text((20, H - 95), "A left needle 15° medial, prone, seen from the feet (the patient's "
              "left on the left). The bull's-eye view's detector (red):", fill="black",
              font=font(19))
    draw.text((20, H - 62), f"{view.words}.", fill="black", font=font(19, bold=True))
    image.save(OUT)


if __name__ == "__main__":
    main()
