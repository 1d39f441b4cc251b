"""ddtool.train"""
