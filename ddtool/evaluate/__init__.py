"""ddtool.evaluate"""
