"""The Textual operator console."""
