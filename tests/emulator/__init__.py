"""Tests of the local Anthropic API emulator (claude_magics.emulator), over HTTP on 127.0.0.1."""
