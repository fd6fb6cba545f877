"""Thin click commands: parse arguments, call the API, render text/JSON/SARIF. No logic here."""
