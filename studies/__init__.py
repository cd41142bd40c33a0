"""Runs and studies: case files in, metrics, fields, pictures and reports out.

This is the only package that touches the file system for runs.
"""
