"""jitsuin.ca: PKI objects and decisions (profiles, issuance, CA generations).

No I/O beyond what a caller hands in: a ``Clock``, a key ``Signer`` and a ``lint`` callable.
"""
