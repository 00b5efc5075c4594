"""The two planes a needle is inspected in: one containing it, one across it (LPS mm).

Why here and not in the needle view: which plane is "0°", which way a rotation turns and
which way is screen-right are geometry of the needle and the patient, the same for any
picture of them (a view, a report page), and testable without a display.
"""

from __future__ import annotations

import math

import numpy as np

from planning.reslice import ViewPlane, unit_vector
from planning.volume import FloatArray

NEEDLE_DIRECTION = "a needle direction"  # named in the ValueError of a zero or NaN one


def needle_reference_frame(direction_lps: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Screen-right and plane normal of the along-the-needle plane at 0° rotation.

    The normal is the superior axis with its component along the needle removed: of all
    planes containing the needle, this one is closest to the axial plane, and with the
    normal pointing superior it is seen from the feet, like the axial view. A needle running
    cranio-caudally has no such plane; then the patient's left axis takes the place of
    superior (a sagittal-like view), which real trajectories never need.
    """
    d = unit_vector(direction_lps, NEEDLE_DIRECTION)
    for reference in (np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])):
        normal = reference - float(reference @ d) * d
        if float(np.linalg.norm(normal)) > 1e-3:
            normal = normal / np.linalg.norm(normal)
            return np.cross(d, normal), normal
    raise AssertionError("unreachable: S and L cannot both be parallel to one direction")


def rotated_right_lps(direction_lps: FloatArray, rotation_deg: float) -> FloatArray:
    """Screen-right of the along plane turned by ``rotation_deg`` about the needle.

    Chosen so that the plane normal turns by +``rotation_deg`` about the needle direction
    (right-hand rule), i.e. clockwise as seen in the probe's-eye pane.
    """
    right0, normal0 = needle_reference_frame(direction_lps)
    a = math.radians(rotation_deg)
    return math.cos(a) * right0 - math.sin(a) * normal0


def along_plane(direction_lps: FloatArray, rotation_deg: float) -> ViewPlane:
    """The plane containing the needle: screen-down along the needle (entry at the top)."""
    d = unit_vector(direction_lps, NEEDLE_DIRECTION)
    return ViewPlane("Along the needle", rotated_right_lps(d, rotation_deg), d)


def probe_plane(direction_lps: FloatArray) -> ViewPlane:
    """The plane across the needle, seen from the entry (its normal is the needle direction).

    Screen-right is the 0° along plane's screen-right, so at 0° the along plane cuts this
    view along a horizontal line through the centre.
    """
    d = unit_vector(direction_lps, NEEDLE_DIRECTION)
    right0, _ = needle_reference_frame(d)
    return ViewPlane("Probe's eye", right0, np.cross(d, right0))

