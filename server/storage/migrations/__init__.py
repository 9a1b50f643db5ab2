"""Numbered SQL migrations, ``NNNN_name.<dialect>.sql``, applied in order at start."""
