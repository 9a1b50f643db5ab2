"""The registration authority: the seed's offline vetting, one-time credentials and PIN e-mail."""
