"""The printed plan: the PDF report for the angio suite and the trainee's report, and the
slice and fluoroscopy images they show. Pure domain (no Qt, no VTK): images of the 3D scene
come from the caller.
"""
