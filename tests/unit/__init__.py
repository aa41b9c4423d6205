"""Unit tests: pure logic on captured `docker inspect` JSON; no socket is ever opened."""
