"""ddtool.features"""
