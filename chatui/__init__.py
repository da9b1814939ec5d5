"""chatui: a local chat web app for OpenAI-compatible model servers."""

__version__ = "0.1.0"
