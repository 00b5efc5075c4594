"""What VertebroPlan exchanges with other software: the plan file (JSON), DICOM SR, SEG and
Encapsulated PDF (written and read back), 3D Slicer markups, meshes, de-identification and
DICOM send, and segmentations imported as the anatomy. Pure domain (no Qt, no VTK).
"""
