"""Packaged resources: the Qt stylesheet (style.qss), icons and the demo-CT presets.

Find them through ``resources.__path__`` rather than through names defined here, so that
lookups also work when an editable install presents this as a namespace package.
"""
