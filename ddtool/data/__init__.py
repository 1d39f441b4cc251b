"""ddtool.data"""
