"""EST (RFC 7030): pickup with the download PIN, re-enrollment with the current certificate."""
