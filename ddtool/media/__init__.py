"""ddtool.media"""
