"""Plan exports for the angio suite: PDF report, DICOM SR, Encapsulated PDF, DICOM send,
de-identification. Pure domain (no Qt, no VTK): images of the 3D scene come from the caller.
"""
