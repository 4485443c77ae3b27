"""Thin views: parse, call one service command or one read query, answer."""
