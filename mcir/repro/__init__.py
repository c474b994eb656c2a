"""Reproduction harness: run methods × seeds, evaluate every run, and report gains with seed noise."""
