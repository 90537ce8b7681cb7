"""Ablage-System reference stand-in: FastAPI backend and OCR worker."""
