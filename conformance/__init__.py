"""jitsuin.conformance: the conformance suite (docs/conformance.md).

- ``registry``: rules as data (id, requirement, citation, source, severity, effective dates,
  ``applies()``, ``check()``); ``rules/`` registers docs/conformance.md A-D and the EST/ACME points.
- ``documents``, ``lineage``: certificates, CRLs and OCSP responses with the corpus they were
  loaded with (issuers, the rollover set); ``live``: a live server's recorded exchanges.
- ``runner``, ``report``: lint files or a corpus; text, JSON, JUnit XML and SARIF reports.
- ``gate``: the pre-issuance lint the CA runs on every draft, CRL and OCSP response.
- ``pkilint_delegate``: pkilint in-process, with namespaced codes.
"""
