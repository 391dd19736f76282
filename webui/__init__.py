"""The Streamlit web UI (``app.py``): customer chat, agent console, knowledge-base page.

Lives outside :mod:`supportbot` because the knowledge-base page runs the ingestion
pipeline (:mod:`ingest`), and the runtime must never import ingestion. Each page is a
function so the pages can be tested one at a time with Streamlit's ``AppTest``.
"""
