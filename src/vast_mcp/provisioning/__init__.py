"""Provisioning domain: plan and quote, create with fallback and reconciliation, readiness.

Nothing here imports MCP; the tools are thin wrappers around these functions.
"""
