"""Streamlit-only helpers shared by the app's pages (the library ``rrs`` never imports this)."""
