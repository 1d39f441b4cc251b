"""ddtool.explain"""
