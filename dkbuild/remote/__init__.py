"""Clients for remote build services (the Bazel Remote Execution API)."""
